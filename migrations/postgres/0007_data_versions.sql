-- A version per data set that changes rarely and is read on nearly every request, so each
-- instance can keep what it derives from that data in memory and know, with one cheap read,
-- whether it is still current. The triggers bump a version in the transaction that changes
-- the data, whoever writes it (a page, the command line, a roles file, the sync), so a reader
-- that sees a version also sees the data it stands for.
--
-- Each bump is also announced (NOTIFY gatehouse_data_versions, payload "kind version") when
-- its transaction commits, so instances listening learn of it at once without asking.
--
--   users:  the accounts (a sign-in rewrites its row).
--   directory: the GitHub identities (who is who), as the sync and the feeds write them.
--   access: roles, their assignments (to accounts and to email addresses), group mappings and
--           break-glass admin grants.
--   repos:  the repositories and their traffic. Every writer of traffic refreshes
--           repo_summaries in the same transaction (the sync, the sample loader, the daily
--           refresh), so a trigger there covers the traffic tables without a bump per row
--           written; a change to a repository itself bumps it too, and so does a successful
--           sync run, for the "last sync" a page shows.
CREATE TABLE data_versions (
    kind    TEXT   PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0
);
INSERT INTO data_versions (kind) VALUES ('users'), ('directory'), ('access'), ('repos');

CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped BIGINT;
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE kind = TG_ARGV[0]
        RETURNING version INTO bumped;
    PERFORM pg_notify('gatehouse_data_versions', TG_ARGV[0] || ' ' || bumped);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('users');

CREATE TRIGGER github_identities_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON github_identities
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('directory');

CREATE TRIGGER roles_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('access');
CREATE TRIGGER user_roles_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('access');
CREATE TRIGGER role_email_assignments_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_email_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('access');
CREATE TRIGGER group_role_mappings_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON group_role_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('access');
CREATE TRIGGER admin_grants_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON admin_grants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('access');

CREATE TRIGGER repo_summaries_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON repo_summaries
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('repos');
CREATE TRIGGER repos_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON repos
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('repos');
CREATE TRIGGER sync_runs_version AFTER UPDATE OF outcome ON sync_runs
    FOR EACH ROW WHEN (NEW.outcome = 'success')
    EXECUTE FUNCTION bump_data_version('repos');
