-- The GitHub username directory at 100,000 rows: one index per sort order so a page is a short
-- index walk (keyset pagination by (key, id)). SQLite has no trigram index here: a substring
-- search scans `search_text`, which the benchmark measures (README, Performance).
ALTER TABLE github_identities
    ADD COLUMN search_text TEXT GENERATED ALWAYS AS
        (lower(name || ' ' || email || ' ' || github_username)) VIRTUAL;
CREATE INDEX github_identities_name_sort_idx ON github_identities (lower(name), id);
CREATE INDEX github_identities_email_sort_idx ON github_identities (email, id);
CREATE INDEX github_identities_login_sort_idx ON github_identities (lower(github_username), id);
CREATE INDEX github_identities_pull_sort_idx ON github_identities (last_pull_date, id);

CREATE INDEX distribution_list_members_list_idx ON distribution_list_members (list_id);

CREATE TABLE sync_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT     NOT NULL,
    expires_at DATETIME NOT NULL
);
