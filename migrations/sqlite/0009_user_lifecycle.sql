-- The identity lifecycle, per user: the Okta Users API's last word (when, the status it
-- gave, what was done), and why the groups of the last sign-in may be incomplete.
CREATE TABLE user_lifecycle (
    user_id         INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    checked_at      TEXT,
    status          TEXT,
    outcome         TEXT,
    groups_note     TEXT,
    groups_noted_at TEXT
);
