"""HQ's store: what the fleet sends (reads, hits, images, dispositions, K9, heat, positions, status) and what the
console keeps (accounts, the search audit, published watchlists), with the purge log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Reads and positions are partitioned by day on their own time so that retention drops whole partitions
(picar/hq/store/partitions.py creates them ahead and on demand). A unique key on a partitioned table
must hold the partition key, so a read is unique on (event_id, time): the time is the event's own, and
every resend of an event is byte-identical (the car's outbox), so a duplicate always lands on the same
key in the same partition and ON CONFLICT DO NOTHING stores it once, with no global index to grow.
The other kinds are few and unique on event_id alone. Times are the car's (timestamptz, UTC);
received_at is HQ's.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE vehicles (
    id                  text PRIMARY KEY,
    online              boolean NOT NULL DEFAULT false,
    status              jsonb,                -- the last status payload, as the car sent it
    status_time         timestamptz,          -- the status's own time (the last will has none)
    last_seen           timestamptz,          -- when HQ last heard anything from the car
    watchlist_version   bigint,
    backlog             integer,
    last_lat            double precision,
    last_lon            double precision,
    last_position_time  timestamptz,
    first_seen          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reads (
    time        timestamptz NOT NULL,
    event_id    text NOT NULL,
    vehicle     text NOT NULL,
    camera      text,
    plate       text NOT NULL,
    plate_key   text NOT NULL,               -- the plate with look-alikes folded (picar.hq.store.plates)
    confidence  real,
    candidates  jsonb,
    first_seen  timestamptz,
    frames      integer,
    box         integer[],
    region      text,
    lat         double precision,
    lon         double precision,
    position    jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, time)
) PARTITION BY RANGE (time);
CREATE INDEX reads_plate ON reads (plate text_pattern_ops, time);
CREATE INDEX reads_plate_key ON reads (plate_key text_pattern_ops, time);
CREATE INDEX reads_vehicle_time ON reads (vehicle, time);
CREATE INDEX reads_time ON reads USING brin (time);
CREATE INDEX reads_area ON reads USING gist (point(lon, lat)) WHERE lat IS NOT NULL AND lon IS NOT NULL;

CREATE TABLE hits (
    event_id         text PRIMARY KEY,
    read_event_id    text,
    vehicle          text NOT NULL,
    camera           text,
    time             timestamptz NOT NULL,   -- when the plate was read
    raised_at        timestamptz,
    plate            text NOT NULL,          -- the listed plate
    plate_key        text NOT NULL,
    read_text        text,                   -- the candidate that matched
    read_top         text,                   -- the read's best text
    confidence       real,
    list             text NOT NULL,
    region           text,
    priority         integer,
    covert           boolean NOT NULL DEFAULT false,
    reason           text,
    match_kind       text,
    match_distance   integer,
    match            jsonb,
    lat              double precision,
    lon              double precision,
    repeat_of        text,
    recheck          boolean NOT NULL DEFAULT false,
    payload          jsonb NOT NULL,         -- the whole event: a hit is evidence, kept as the car sent it
    received_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,            -- by an operator at the console
    acknowledged_by  text
);
CREATE INDEX hits_time ON hits (time DESC);
CREATE INDEX hits_received ON hits (received_at DESC);
CREATE INDEX hits_vehicle_time ON hits (vehicle, time DESC);
CREATE INDEX hits_plate ON hits (plate text_pattern_ops);
CREATE INDEX hits_plate_key ON hits (plate_key text_pattern_ops);
CREATE INDEX hits_unacknowledged ON hits (priority, received_at) WHERE acknowledged_at IS NULL;

CREATE TABLE images (
    event_id      text PRIMARY KEY,
    hit_event_id  text NOT NULL,             -- no foreign key: the image may arrive before its hit
    vehicle       text NOT NULL,
    role          text NOT NULL CHECK (role IN ('crop', 'frame')),
    time          timestamptz NOT NULL,
    content_type  text NOT NULL,
    bytes         integer NOT NULL,
    data          bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE images ALTER COLUMN data SET STORAGE EXTERNAL;  -- JPEG does not compress: do not try
CREATE INDEX images_hit ON images (hit_event_id);
CREATE INDEX images_time ON images (time);

CREATE TABLE dispositions (
    event_id      text PRIMARY KEY,
    hit_event_id  text NOT NULL,
    vehicle       text NOT NULL,
    decision      text NOT NULL,
    reason        text,
    note          text,
    time          timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dispositions_hit ON dispositions (hit_event_id, time);
CREATE INDEX dispositions_time ON dispositions (time);

-- One row per deployment, filled by its start and its end event (either may arrive first).
CREATE TABLE k9_deployments (
    vehicle         text NOT NULL,
    deployment_id   text NOT NULL,
    dog             text,
    handler         text,
    type            text,
    case_number     text,
    notes           text,
    trigger         text,
    started_at      timestamptz,
    start_lat       double precision,
    start_lon       double precision,
    ended_at        timestamptz,
    outcome         text,
    end_notes       text,
    duration_s      double precision,
    track_length_m  double precision,
    track           jsonb,
    start_event_id  text UNIQUE,
    end_event_id    text UNIQUE,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle, deployment_id)
);
CREATE INDEX k9_started ON k9_deployments (started_at);
CREATE INDEX k9_dog ON k9_deployments (dog, started_at);

CREATE TABLE heat_alarms (
    event_id         text PRIMARY KEY,
    vehicle          text NOT NULL,
    state            text NOT NULL,
    temp_c           real,
    reason           text,
    time             timestamptz NOT NULL,
    payload          jsonb NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text
);
CREATE INDEX heat_time ON heat_alarms (time DESC);
CREATE INDEX heat_unacknowledged ON heat_alarms (received_at) WHERE acknowledged_at IS NULL;

CREATE TABLE positions (
    vehicle      text NOT NULL,
    time         timestamptz NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    fix          text,
    speed_kmh    real,
    heading_deg  real,
    sats         integer,
    hdop         real,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle, time)
) PARTITION BY RANGE (time);
CREATE INDEX positions_time ON positions USING brin (time);

-- What ingest could not store (bad JSON, a missing field, a time far ahead): kept as received, and
-- acknowledged to the car like any stored event so that it is not sent forever.
CREATE TABLE rejected_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    vehicle      text NOT NULL,
    kind         text NOT NULL,
    event_id     text,
    error        text NOT NULL,
    payload      bytea NOT NULL
);
CREATE UNIQUE INDEX rejected_event_id ON rejected_events (vehicle, kind, event_id) WHERE event_id IS NOT NULL;

CREATE TABLE purge_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text NOT NULL,                   -- reads, hits, images, positions, k9, heat
    action  text NOT NULL,                   -- drop partition, delete, refused on arrival
    cutoff  timestamptz NOT NULL,
    rows    bigint NOT NULL,
    detail  text
);
CREATE INDEX purge_log_at ON purge_log (at);

CREATE TABLE accounts (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash  text NOT NULL,            -- argon2id (argon2-cffi)
    role           text NOT NULL CHECK (role IN ('operator', 'supervisor', 'auditor')),
    language       text NOT NULL DEFAULT 'ro' CHECK (language IN ('ro', 'ru', 'en')),
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

-- Who searched the reads, when, for which case and why, and how many reads they saw. Append-only.
CREATE TABLE search_audit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    account_id    integer,                   -- no foreign key: an entry outlives its account, unchanged
    username      text NOT NULL,
    case_number   text NOT NULL CHECK (btrim(case_number) <> ''),
    reason        text NOT NULL CHECK (btrim(reason) <> ''),
    query         jsonb NOT NULL,
    result_count  integer NOT NULL
);
CREATE INDEX search_audit_at ON search_audit (at);
CREATE INDEX search_audit_user ON search_audit (username, at);
CREATE INDEX search_audit_case ON search_audit (case_number);
CREATE FUNCTION search_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'search_audit is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER search_audit_append_only BEFORE UPDATE OR DELETE ON search_audit
    FOR EACH STATEMENT EXECUTE FUNCTION search_audit_append_only();

-- Every watchlist HQ published: the signed document as sent, to whom, by whom.
CREATE TABLE watchlist_versions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version       bigint NOT NULL,
    target        text NOT NULL DEFAULT 'fleet',   -- 'fleet' or one vehicle id
    kind          text NOT NULL CHECK (kind IN ('snapshot', 'delta')),
    entries       integer NOT NULL,
    sha256        text NOT NULL,
    document      bytea NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    published_by  text NOT NULL,
    note          text,
    UNIQUE (target, version)
);
"""

TABLES = ("watchlist_versions", "search_audit", "accounts", "purge_log", "rejected_events", "positions",
          "heat_alarms", "k9_deployments", "dispositions", "images", "hits", "reads", "vehicles")


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("DROP TABLE " + ", ".join(TABLES) + " CASCADE")
    op.execute("DROP FUNCTION search_audit_append_only()")
