-- Every instance now searches and pages the directory in memory (rebuilt when the directory's
-- data version moves), so the trigram table and the sort indexes that served those queries
-- only slow the sync's writes. The lookup by email and the unique login stay.
DROP TRIGGER IF EXISTS github_identities_fts_insert;
DROP TRIGGER IF EXISTS github_identities_fts_delete;
DROP TRIGGER IF EXISTS github_identities_fts_update;
DROP TABLE IF EXISTS github_identities_fts;
DROP INDEX IF EXISTS github_identities_name_sort_idx;
DROP INDEX IF EXISTS github_identities_email_sort_idx;
DROP INDEX IF EXISTS github_identities_login_sort_idx;
DROP INDEX IF EXISTS github_identities_pull_sort_idx;
ALTER TABLE github_identities DROP COLUMN search_text;
