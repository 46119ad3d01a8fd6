-- Repositories keyed by GitHub's id (see migrations/postgres/0004_repo_history.sql). SQLite
-- cannot add a UNIQUE column: a unique index says the same (NULLs stay distinct).
ALTER TABLE repos ADD COLUMN github_id  INTEGER;
ALTER TABLE repos ADD COLUMN stars      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN forks      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN removed_at TEXT;
CREATE UNIQUE INDEX repos_github_id_idx ON repos (github_id);

CREATE TABLE repo_stars (
    repo_id INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day     TEXT    NOT NULL,
    stars   INTEGER NOT NULL DEFAULT 0,
    forks   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day)
);

CREATE TABLE repo_referrers (
    repo_id  INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day      TEXT    NOT NULL,
    referrer TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    uniques  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day, referrer)
);

CREATE TABLE repo_paths (
    repo_id INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day     TEXT    NOT NULL,
    path    TEXT    NOT NULL,
    title   TEXT    NOT NULL DEFAULT '',
    count   INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day, path)
);
