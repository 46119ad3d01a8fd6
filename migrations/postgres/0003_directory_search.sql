-- The GitHub username directory at 100,000 rows: substring search through a trigram index, and
-- one index per sort order so a page is a short index walk (keyset pagination by (key, id)).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE github_identities
    ADD COLUMN search_text TEXT GENERATED ALWAYS AS
        (lower(name || ' ' || email || ' ' || github_username)) STORED;
CREATE INDEX github_identities_search_idx ON github_identities USING gin (search_text gin_trgm_ops);
CREATE INDEX github_identities_name_sort_idx ON github_identities (lower(name), id);
CREATE INDEX github_identities_email_sort_idx ON github_identities (email, id);
CREATE INDEX github_identities_login_sort_idx ON github_identities (lower(github_username), id);
CREATE INDEX github_identities_pull_sort_idx ON github_identities (last_pull_date, id);

CREATE INDEX distribution_list_members_list_idx ON distribution_list_members (list_id);

-- One sync at a time across processes and instances: whoever holds an unexpired lease runs.
CREATE TABLE sync_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
