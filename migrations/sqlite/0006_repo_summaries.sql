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

CREATE INDEX repos_lower_name_idx ON repos (lower(name));
