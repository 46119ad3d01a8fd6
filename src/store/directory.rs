//! Directory queries both backends accept, written once (see `common` for why a macro).

macro_rules! directory_queries {
    ($db:ty) => {
        use crate::directory::search::{CursorValue, SearchQuery, like_pattern};
        use crate::directory::{Identity, Laptop, ListMembership, PersonFacts};

        const IDENTITY_COLUMNS: &str =
            "id, name, email, github_username, last_pull_date, departed_at";

        /// Up to `limit + 1` rows after the cursor, in the query's order.
        pub async fn search_identities(
            pool: &Pool,
            query: &SearchQuery,
        ) -> Result<Vec<Identity>, StoreError> {
            let key = query.sort.sql();
            let (cmp, dir) = if query.desc {
                ("<", "DESC")
            } else {
                (">", "ASC")
            };
            let mut sql = format!("SELECT {IDENTITY_COLUMNS} FROM github_identities WHERE TRUE");
            let mut n = 0;
            let mut next = || {
                n += 1;
                n
            };
            if !query.include_departed {
                sql.push_str(" AND departed_at IS NULL");
            }
            if !query.q.is_empty() {
                sql.push_str(&format!(" AND search_text LIKE ${} ESCAPE '\\'", next()));
            }
            if query.after.is_some() {
                let (a, b) = (next(), next());
                sql.push_str(&format!(" AND ({key}, id) {cmp} (${a}, ${b})"));
            }
            sql.push_str(&format!(
                " ORDER BY {key} {dir}, id {dir} LIMIT ${}",
                next()
            ));
            let mut q = sqlx::query_as::<_, Identity>(&sql);
            if !query.q.is_empty() {
                q = q.bind(like_pattern(&query.q));
            }
            if let Some(after) = &query.after {
                q = match &after.value {
                    CursorValue::Text(s) => q.bind(s.clone()),
                    CursorValue::Time(t) => q.bind(*t),
                };
                q = q.bind(after.id);
            }
            Ok(q.bind(i64::from(query.limit) + 1).fetch_all(pool).await?)
        }

        pub async fn person_facts(pool: &Pool, email: &str) -> Result<PersonFacts, StoreError> {
            let github: Vec<Identity> = sqlx::query_as(&format!(
                "SELECT {IDENTITY_COLUMNS} FROM github_identities \
                 WHERE email = $1 AND departed_at IS NULL ORDER BY lower(github_username)"
            ))
            .bind(email)
            .fetch_all(pool)
            .await?;
            let laptops: Vec<Laptop> = sqlx::query_as(
                "SELECT serial, model, assigned_at FROM assets WHERE owner_email = $1 \
                 ORDER BY serial",
            )
            .bind(email)
            .fetch_all(pool)
            .await?;
            let lists: Vec<ListMembership> = sqlx::query_as(
                "SELECT l.list_email, l.name, l.hidden, m.role \
                 FROM distribution_list_members m \
                 JOIN distribution_lists l ON l.id = m.list_id \
                 WHERE m.member_email = $1 ORDER BY lower(l.name), l.list_email",
            )
            .bind(email)
            .fetch_all(pool)
            .await?;
            let (owner_of, member_of) = lists.into_iter().partition(|l| l.role == "owner");
            Ok(PersonFacts {
                github,
                laptops,
                member_of,
                owner_of,
            })
        }
    };
}

pub(crate) use directory_queries;
