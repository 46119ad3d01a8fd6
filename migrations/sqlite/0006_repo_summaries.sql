-- Each repository's recent traffic, summed once per day and after each sync (see
-- migrations/postgres/0006_repo_summaries.sql).
CREATE TABLE repo_summaries (
    repo_id           INTEGER PRIMARY KEY REFERENCES repos (id) ON DELETE CASCADE,
    as_of             TEXT    NOT NULL,
    views_14d         INTEGER NOT NULL DEFAULT 0,
    unique_views_14d  INTEGER NOT NULL DEFAULT 0,
    clones_14d        INTEGER NOT NULL DEFAULT 0,
    unique_clones_14d INTEGER NOT NULL DEFAULT 0,
    views_prev_14d    INTEGER NOT NULL DEFAULT 0,
    clones_prev_14d   INTEGER NOT NULL DEFAULT 0,
    last_day          TEXT
);

-- Covering indexes for a repository's days in order (SQLite cannot change a primary key).
CREATE INDEX repo_traffic_series_idx
    ON repo_traffic (repo_id, day, views, unique_views, clones, unique_clones);
CREATE INDEX repo_stars_series_idx ON repo_stars (repo_id, day, stars);

-- Names compared and searched in lower case (SQLite adds only virtual generated columns).
ALTER TABLE repos ADD COLUMN name_key TEXT GENERATED ALWAYS AS (lower(name)) VIRTUAL;
ALTER TABLE repos ADD COLUMN search_text TEXT
    GENERATED ALWAYS AS (lower(name || ' ' || description)) VIRTUAL;
CREATE INDEX repos_name_key_idx ON repos (name_key);
