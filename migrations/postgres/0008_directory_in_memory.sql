-- Every instance now searches and pages the directory in memory (rebuilt when the directory's
-- data version moves), so the indexes that served those queries only slow the sync's writes.
-- The lookup by email (github_identities_email_idx) and the unique login stay.
DROP INDEX IF EXISTS github_identities_search_idx;
DROP INDEX IF EXISTS github_identities_name_sort_idx;
DROP INDEX IF EXISTS github_identities_email_sort_idx;
DROP INDEX IF EXISTS github_identities_login_sort_idx;
DROP INDEX IF EXISTS github_identities_pull_sort_idx;
ALTER TABLE github_identities DROP COLUMN IF EXISTS search_text;
