-- The list of repositories shows each one's traffic over the last 14 days and the 14 before.
-- Summing 28 days of every repository on every request reads tens of thousands of rows for a
-- large organization; these sums are kept per repository instead, computed for one day
-- (`as_of`, UTC) by the sync after it writes traffic, and again by the first request of a
-- new day.
CREATE TABLE repo_summaries (
    repo_id           BIGINT PRIMARY KEY REFERENCES repos (id) ON DELETE CASCADE,
    as_of             DATE   NOT NULL,
    views_14d         BIGINT NOT NULL DEFAULT 0,
    unique_views_14d  BIGINT NOT NULL DEFAULT 0,
    clones_14d        BIGINT NOT NULL DEFAULT 0,
    unique_clones_14d BIGINT NOT NULL DEFAULT 0,
    views_prev_14d    BIGINT NOT NULL DEFAULT 0,
    clones_prev_14d   BIGINT NOT NULL DEFAULT 0,
    -- The last day with traffic, however long ago.
    last_day          DATE
);

-- A repository's page reads its days in order; with the counts in the index those reads
-- touch the index alone, however the sync's daily writes scattered the rows.
ALTER TABLE repo_traffic DROP CONSTRAINT repo_traffic_pkey,
    ADD CONSTRAINT repo_traffic_pkey PRIMARY KEY (repo_id, day)
        INCLUDE (views, unique_views, clones, unique_clones);
ALTER TABLE repo_stars DROP CONSTRAINT repo_stars_pkey,
    ADD CONSTRAINT repo_stars_pkey PRIMARY KEY (repo_id, day) INCLUDE (stars);

-- Names are compared, sorted and searched case-insensitively, as GitHub compares them;
-- lower() under the database's locale costs about a microsecond a row, paid once per write
-- here rather than for every row of every list.
-- Byte order ("C") for the key: GitHub's names are ASCII, so it sorts them as the locale
-- would, without the locale's cost per comparison.
ALTER TABLE repos ADD COLUMN name_key TEXT COLLATE "C" GENERATED ALWAYS AS (lower(name)) STORED;
ALTER TABLE repos ADD COLUMN search_text TEXT
    GENERATED ALWAYS AS (lower(name || ' ' || description)) STORED;
CREATE INDEX repos_name_key_idx ON repos (name_key);
