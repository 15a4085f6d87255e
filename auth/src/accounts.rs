//! Tenants, users and memberships in Postgres: signup, credential checks and the users API's
//! rules (password strength, unique e-mail per tenant, the last owner stays an owner).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{AuthError, Role, TenantId, password};

/// Why a signup or user change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a user with this e-mail already exists in this tenant")]
    EmailTaken,
    #[error("the tenant must keep at least one owner")]
    LastOwner,
    #[error("only an owner can grant or remove the owner role")]
    OwnerOnly,
    #[error("user not found")]
    NotFound,
}

impl crate::ErrorCode for AccountError {
    fn code(&self) -> crate::Code {
        use crate::Code;
        match self {
            AccountError::Invalid { .. } => Code::ValidationFailed,
            AccountError::EmailTaken => Code::EmailTaken,
            AccountError::LastOwner => Code::LastOwner,
            AccountError::OwnerOnly => Code::Forbidden,
            AccountError::NotFound => Code::NotFound,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AccountError {
    AccountError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A normalised e-mail address (lower case, trimmed, plausible shape).
pub fn normalise_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(invalid("email", "is not a valid e-mail address"))
    }
}

const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password123",
    "123456789012",
    "qwertyuiopas",
    "letmeinplease",
    "administrator",
    "welcome12345",
    "iloveyou1234",
    "changeme1234",
];

/// At least 12 characters, not all one character, not a well-known password, not the
/// e-mail address.
pub fn check_password_strength(password: &str, email: &str) -> Result<(), AccountError> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < 12 {
        return Err(invalid("password", "must be at least 12 characters long"));
    }
    if chars.len() > 256 {
        return Err(invalid("password", "must be at most 256 characters long"));
    }
    if chars.iter().all(|c| *c == chars[0]) {
        return Err(invalid("password", "must not repeat a single character"));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err(invalid("password", "is a well-known password"));
    }
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || (!local.is_empty() && lower == local) {
        return Err(invalid("password", "must not be the e-mail address"));
    }
    Ok(())
}

/// A URL-safe slug from a tenant name.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    if slug.is_empty() {
        "tenant".to_owned()
    } else {
        slug
    }
}

pub struct NewTenant {
    pub id: TenantId,
    pub slug: String,
    pub owner: Uuid,
}

/// Creates a tenant and its owner. The slug comes from the name, with a suffix when taken.
pub async fn signup(
    db: &PgPool,
    tenant_name: &str,
    email: &str,
    password_clear: &str,
) -> Result<Result<NewTenant, AccountError>, AuthError> {
    let name = tenant_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Ok(Err(invalid("tenant_name", "must be 1 to 200 characters")));
    }
    let email = match normalise_email(email) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = check_password_strength(password_clear, &email) {
        return Ok(Err(e));
    }
    let hash = password::hash_off_thread(password_clear).await?;
    let base = slugify(name);
    for attempt in 0..5u32 {
        let slug = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}-{}", &Uuid::new_v4().simple().to_string()[..6])
        };
        let id = TenantId::new();
        let owner = Uuid::now_v7();
        let mut tx = brain_migrations::begin_tenant(db, id).await?;
        let inserted = sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)")
            .bind(id.0)
            .bind(&slug)
            .bind(name)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, password_hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(owner)
        .bind(id.0)
        .bind(&email)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')")
            .bind(id.0)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        crate::audit::append(
            &mut tx,
            id,
            crate::audit::AuditEvent::by(
                crate::Actor::User(owner),
                "auth.signup",
                format!("tenants/{id}"),
                serde_json::json!({ "slug": slug }),
            ),
        )
        .await?;
        tx.commit().await?;
        return Ok(Ok(NewTenant { id, slug, owner }));
    }
    Ok(Err(invalid(
        "tenant_name",
        "could not find a free slug; choose another name",
    )))
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

/// One account an e-mail + password may sign in to.
#[derive(Debug)]
pub struct LoginCandidate {
    pub tenant: TenantId,
    pub tenant_slug: String,
    pub user: Uuid,
    pub role: Role,
}

#[derive(Debug)]
pub enum LoginOutcome {
    Ok(LoginCandidate),
    /// No account matches (unknown e-mail, wrong password or disabled): the caller cannot tell.
    Denied {
        tenant: Option<TenantId>,
        user: Option<Uuid>,
    },
    /// The password fits accounts in several tenants: the caller must name one.
    TenantRequired,
}

/// A fixed Argon2id hash verified when no account exists, so timing does not reveal which
/// e-mails are registered.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZfrfqTgTuvNJXwXY5nfMxk3u8PLzP6CUsgfY0d2Zfw0";

/// (tenant, tenant slug, user, password hash, role, disabled) of every account with `email`,
/// across tenants (through the `SECURITY DEFINER` lookup).
pub(crate) type CandidateRow = (Uuid, String, Uuid, Option<String>, String, bool);

pub(crate) async fn login_candidates(
    db: &PgPool,
    email: &str,
) -> Result<Vec<CandidateRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM auth_login_candidates($1)")
        .bind(email.trim().to_lowercase())
        .fetch_all(db)
        .await
}

/// The tenant with `slug`, looked up before any tenant context exists.
pub async fn tenant_by_slug<'c, E>(db: E, slug: &str) -> Result<Option<TenantId>, AuthError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let id: Option<Uuid> = sqlx::query_scalar("SELECT auth_tenant_by_slug($1)")
        .bind(slug)
        .fetch_one(db)
        .await?;
    Ok(id.map(TenantId))
}

pub async fn check_login(
    db: &PgPool,
    email: &str,
    password_clear: &str,
    tenant_slug: Option<&str>,
) -> Result<LoginOutcome, AuthError> {
    let rows: Vec<CandidateRow> = login_candidates(db, email)
        .await?
        .into_iter()
        .filter(|r| tenant_slug.is_none_or(|slug| r.1 == slug))
        .collect();
    if rows.is_empty() {
        password::verify_off_thread(password_clear, DUMMY_HASH).await;
        return Ok(LoginOutcome::Denied {
            tenant: None,
            user: None,
        });
    }
    let mut matches = Vec::new();
    let mut denied = (None, None);
    for (tenant, slug, user, hash, role, disabled) in rows {
        let ok = match hash.as_deref() {
            Some(h) => password::verify_off_thread(password_clear, h).await,
            None => false,
        };
        denied = (Some(TenantId(tenant)), Some(user));
        if ok && !disabled {
            let role = role.parse()?;
            matches.push(LoginCandidate {
                tenant: TenantId(tenant),
                tenant_slug: slug,
                user,
                role,
            });
        }
    }
    Ok(match matches.len() {
        0 => LoginOutcome::Denied {
            tenant: denied.0,
            user: denied.1,
        },
        1 => matches
            .pop()
            .map_or(LoginOutcome::TenantRequired, LoginOutcome::Ok),
        _ => LoginOutcome::TenantRequired,
    })
}

/// The current role of `user` in the transaction's tenant (None: no longer a member).
pub async fn current_role(tx: &mut PgConnection, user: Uuid) -> Result<Option<Role>, AuthError> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.user_id = $1 AND u.disabled_at IS NULL",
    )
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    role.map(|r| r.parse().map_err(AuthError::from)).transpose()
}

/// A member of the tenant as the users API shows them.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    #[schema(schema_with = role_schema)]
    pub role: String,
    pub disabled: bool,
    /// Has no password: signs in through SSO only.
    pub sso_only: bool,
    pub created_at: DateTime<Utc>,
}

/// The OpenAPI schema of a [`Role`]: one of its names (`brain-types` stays serde-only).
pub(crate) fn role_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(Role::ALL.map(Role::as_str)))
        .build()
}

const USER_COLUMNS: &str = "u.id, u.email, u.display_name, m.role, u.disabled_at IS NOT NULL \
     AS disabled, u.password_hash IS NULL AS sso_only, u.created_at";

pub async fn get_user(tx: &mut PgConnection, id: Uuid) -> Result<Option<UserView>, AuthError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN memberships m ON m.user_id = u.id \
         WHERE u.id = $1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?)
}

pub async fn list_users(tx: &mut PgConnection) -> Result<Vec<UserView>, AuthError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN memberships m ON m.user_id = u.id \
         ORDER BY u.created_at"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await?)
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub role: Role,
    /// `None`: the user signs in through SSO only.
    pub password: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

pub async fn create_user(
    tx: &mut PgConnection,
    tenant: TenantId,
    actor_role: Role,
    new: &NewUser<'_>,
) -> Result<Result<UserView, AccountError>, AuthError> {
    let email = match normalise_email(new.email) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    if new.role == Role::Owner && actor_role != Role::Owner {
        return Ok(Err(AccountError::OwnerOnly));
    }
    let hash = match new.password {
        Some(p) => {
            if let Err(e) = check_password_strength(p, &email) {
                return Ok(Err(e));
            }
            Some(password::hash_off_thread(p).await?)
        }
        None => None,
    };
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO users (id, tenant_id, email, display_name, password_hash) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(tenant.0)
    .bind(&email)
    .bind(new.display_name)
    .bind(hash)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if unique_violation(&e) => return Ok(Err(AccountError::EmailTaken)),
        other => other?,
    };
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(tenant.0)
        .bind(id)
        .bind(new.role.as_str())
        .execute(&mut *tx)
        .await?;
    match get_user(tx, id).await? {
        Some(user) => Ok(Ok(user)),
        None => Ok(Err(AccountError::NotFound)),
    }
}

/// Locks the tenant's owner memberships and says whether no *enabled* owner other than
/// `user` is left (a disabled owner cannot administer the tenant).
async fn is_last_owner(tx: &mut PgConnection, user: Uuid) -> Result<bool, AuthError> {
    let owners: Vec<Uuid> = sqlx::query_scalar(
        "SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.role = 'owner' AND u.disabled_at IS NULL ORDER BY m.user_id FOR UPDATE OF m",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(owners.iter().all(|o| *o == user))
}

pub struct UserChange<'a> {
    pub role: Option<Role>,
    pub display_name: Option<&'a str>,
    pub disabled: Option<bool>,
}

/// Applies `change`; returns the previous role when the role changed.
pub async fn update_user(
    tx: &mut PgConnection,
    actor_role: Role,
    id: Uuid,
    change: &UserChange<'_>,
) -> Result<Result<(UserView, Option<Role>), AccountError>, AuthError> {
    let Some(before) = get_user(tx, id).await? else {
        return Ok(Err(AccountError::NotFound));
    };
    let before_role: Role = before.role.parse()?;
    let mut previous = None;
    if let Some(role) = change.role.filter(|r| *r != before_role) {
        if (role == Role::Owner || before_role == Role::Owner) && actor_role != Role::Owner {
            return Ok(Err(AccountError::OwnerOnly));
        }
        if before_role == Role::Owner && is_last_owner(tx, id).await? {
            return Ok(Err(AccountError::LastOwner));
        }
        sqlx::query("UPDATE memberships SET role = $2, updated_at = now() WHERE user_id = $1")
            .bind(id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        previous = Some(before_role);
    }
    if change.disabled.is_some() && before_role == Role::Owner && actor_role != Role::Owner {
        return Ok(Err(AccountError::OwnerOnly));
    }
    if change.disabled == Some(true) && before_role == Role::Owner && is_last_owner(tx, id).await? {
        return Ok(Err(AccountError::LastOwner));
    }
    if let Some(name) = change.display_name {
        sqlx::query("UPDATE users SET display_name = $2 WHERE id = $1")
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(disabled) = change.disabled {
        sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(disabled)
        .execute(&mut *tx)
        .await?;
    }
    match get_user(tx, id).await? {
        Some(user) => Ok(Ok((user, previous))),
        None => Ok(Err(AccountError::NotFound)),
    }
}

pub async fn delete_user(
    tx: &mut PgConnection,
    actor_role: Role,
    id: Uuid,
) -> Result<Result<(), AccountError>, AuthError> {
    let Some(user) = get_user(tx, id).await? else {
        return Ok(Err(AccountError::NotFound));
    };
    if user.role == Role::Owner.as_str() {
        if actor_role != Role::Owner {
            return Ok(Err(AccountError::OwnerOnly));
        }
        if is_last_owner(tx, id).await? {
            return Ok(Err(AccountError::LastOwner));
        }
    }
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let email = "ada@example.com";
        for weak in [
            "",
            "short",
            "aaaaaaaaaaaaaaa",
            "password123",
            "ada@example.com",
        ] {
            let err = check_password_strength(weak, email).unwrap_err();
            assert!(
                matches!(
                    err,
                    AccountError::Invalid {
                        field: "password",
                        ..
                    }
                ),
                "{weak}"
            );
        }
        check_password_strength("correct horse battery", email).unwrap();
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in ["", "ada", "@example.com", "ada@example", "a da@example.com"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Acme Marketing, Inc."), "acme-marketing-inc");
        assert_eq!(slugify("!!!"), "tenant");
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
