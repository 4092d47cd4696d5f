// PiCAR HQ console, K9 reports: the print button (no inline scripts under the console's CSP).
"use strict";
document.getElementById("print-button")?.addEventListener("click", () => window.print());
