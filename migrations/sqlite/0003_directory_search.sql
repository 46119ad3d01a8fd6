-- The GitHub username directory at 100,000 rows: one index per sort order so a page is a short
-- index walk (keyset pagination by (key, id)).
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

-- Substring search at 100,000 rows: an FTS5 trigram index over the same text (an external
-- content table, kept in step by triggers). Queries of 3+ characters use it; shorter ones
-- scan `search_text`.
CREATE VIRTUAL TABLE github_identities_fts USING fts5(
    search_text, content='github_identities', content_rowid='id', tokenize='trigram'
);
INSERT INTO github_identities_fts (rowid, search_text) SELECT id, search_text FROM github_identities;
CREATE TRIGGER github_identities_fts_insert AFTER INSERT ON github_identities BEGIN
    INSERT INTO github_identities_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;
CREATE TRIGGER github_identities_fts_delete AFTER DELETE ON github_identities BEGIN
    INSERT INTO github_identities_fts (github_identities_fts, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
END;
CREATE TRIGGER github_identities_fts_update AFTER UPDATE OF name, email, github_username
    ON github_identities BEGIN
    INSERT INTO github_identities_fts (github_identities_fts, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    INSERT INTO github_identities_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;
