-- A version per data set that changes rarely and is read on nearly every request (see
-- migrations/postgres/0007_data_versions.sql for what each covers). SQLite has row triggers
-- only: a statement that writes many rows bumps once per row, which costs nothing that matters
-- in one transaction.
CREATE TABLE data_versions (
    kind    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0
);
INSERT INTO data_versions (kind) VALUES ('users'), ('directory'), ('access'), ('repos');

CREATE TRIGGER users_version_insert AFTER INSERT ON users
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'users'; END;
CREATE TRIGGER users_version_update AFTER UPDATE ON users
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'users'; END;
CREATE TRIGGER users_version_delete AFTER DELETE ON users
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'users'; END;

CREATE TRIGGER github_identities_version_insert AFTER INSERT ON github_identities
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'directory'; END;
CREATE TRIGGER github_identities_version_update AFTER UPDATE ON github_identities
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'directory'; END;
CREATE TRIGGER github_identities_version_delete AFTER DELETE ON github_identities
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'directory'; END;

CREATE TRIGGER roles_version_insert AFTER INSERT ON roles
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER roles_version_update AFTER UPDATE ON roles
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER roles_version_delete AFTER DELETE ON roles
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER user_roles_version_insert AFTER INSERT ON user_roles
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER user_roles_version_update AFTER UPDATE ON user_roles
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER user_roles_version_delete AFTER DELETE ON user_roles
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER role_email_assignments_version_insert AFTER INSERT ON role_email_assignments
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER role_email_assignments_version_update AFTER UPDATE ON role_email_assignments
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER role_email_assignments_version_delete AFTER DELETE ON role_email_assignments
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER group_role_mappings_version_insert AFTER INSERT ON group_role_mappings
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER group_role_mappings_version_update AFTER UPDATE ON group_role_mappings
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER group_role_mappings_version_delete AFTER DELETE ON group_role_mappings
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER admin_grants_version_insert AFTER INSERT ON admin_grants
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER admin_grants_version_update AFTER UPDATE ON admin_grants
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;
CREATE TRIGGER admin_grants_version_delete AFTER DELETE ON admin_grants
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'access'; END;

CREATE TRIGGER repo_summaries_version_insert AFTER INSERT ON repo_summaries
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
CREATE TRIGGER repo_summaries_version_update AFTER UPDATE ON repo_summaries
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
CREATE TRIGGER repo_summaries_version_delete AFTER DELETE ON repo_summaries
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
CREATE TRIGGER repos_version_insert AFTER INSERT ON repos
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
CREATE TRIGGER repos_version_update AFTER UPDATE ON repos
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
CREATE TRIGGER repos_version_delete AFTER DELETE ON repos
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
CREATE TRIGGER sync_runs_version AFTER UPDATE OF outcome ON sync_runs
WHEN NEW.outcome = 'success'
BEGIN UPDATE data_versions SET version = version + 1 WHERE kind = 'repos'; END;
