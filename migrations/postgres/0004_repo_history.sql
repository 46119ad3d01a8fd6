-- Repositories keyed by GitHub's id, so a rename keeps its history; a repository gone from the
-- organization is marked (`removed_at`), never deleted with its history, and unmarked if it
-- comes back. Rows synced before have no id yet: the next sync matches them by name once.
ALTER TABLE repos ADD COLUMN github_id  BIGINT UNIQUE;
ALTER TABLE repos ADD COLUMN stars      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN forks      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN removed_at TIMESTAMPTZ;

-- Stars and forks as they were on each sync day (the last sync of a day wins).
CREATE TABLE repo_stars (
    repo_id BIGINT  NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day     DATE    NOT NULL,
    stars   INTEGER NOT NULL DEFAULT 0,
    forks   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day)
);

-- GitHub's top referrers and popular paths cover its last 14 days as a whole, not per day:
-- each sync day keeps the lists as GitHub gave them that day.
CREATE TABLE repo_referrers (
    repo_id  BIGINT  NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day      DATE    NOT NULL,
    referrer TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    uniques  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day, referrer)
);

CREATE TABLE repo_paths (
    repo_id BIGINT  NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    day     DATE    NOT NULL,
    path    TEXT    NOT NULL,
    title   TEXT    NOT NULL DEFAULT '',
    count   INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo_id, day, path)
);
