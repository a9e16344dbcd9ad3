//! Identities: the one account a person has, its email and its profile
//! attributes (standard OIDC claims plus the operator's own).

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::config::{self, Variables};
use crate::crypto;
use crate::error::{Error, Result};
use crate::store::{SqlStore, identities};
use crate::web::Params;

pub use crate::store::identities::{Identity, by_email, by_id, mark_verified};

/// The longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Validates an email address and returns it normalised (trimmed, lower case).
/// Deliberately practical rather than RFC 5322-complete: one `@`, a local part
/// of at most 64 characters, a dotted domain, no spaces or control characters.
pub fn normalise_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let invalid = || Error::bad_request("Enter a valid email address, like name@example.com.");
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if local.is_empty()
        || local.len() > 64
        || local.contains(['<', '>', '"', ',', ';', '\\', '@'])
        || !domain.contains('.')
        || !labels_ok
    {
        return Err(invalid());
    }
    Ok(email)
}

/// Creates an identity with a new random subject id. Returns `None` when
/// the email is already taken (one statement: two sign-ups racing for one
/// address create one row).
pub fn create(
    db: &dyn SqlStore,
    email: &str,
    password_hash: Option<&str>,
    attributes: &Map<String, Json>,
    now: i64,
) -> Result<Option<Identity>> {
    identities::insert(
        db,
        &crypto::random_id()?,
        email,
        password_hash,
        attributes,
        now,
    )
}

/// Stores a re-hashed password (same password, current parameters).
pub fn store_rehash(db: &dyn SqlStore, id: &str, hash: &str, now: i64) -> Result<()> {
    identities::set_password_hash(db, id, hash, now)
}

/// Sets a new password and ends every existing session, in one statement.
pub fn reset_password(db: &dyn SqlStore, id: &str, hash: &str, now: i64) -> Result<()> {
    identities::reset_password(db, id, hash, now)
}

/// One profile attribute the operator's schema asks for at sign-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The claim name, as in ID tokens and the form field.
    pub name: String,
    /// The label shown on the form.
    pub label: String,
    /// Whether sign-up requires it.
    pub required: bool,
    /// The longest value accepted, in characters.
    pub max_length: usize,
    /// The HTML `autocomplete` token, for standard claims.
    pub autocomplete: &'static str,
}

/// Standard OIDC claims a schema may ask for, with labels and autocomplete tokens.
const STANDARD: &[(&str, &str, &str)] = &[
    ("name", "Full name", "name"),
    ("given_name", "First name", "given-name"),
    ("family_name", "Last name", "family-name"),
    ("middle_name", "Middle name", "additional-name"),
    ("nickname", "Nickname", "nickname"),
    ("preferred_username", "Username", "username"),
    ("locale", "Language", "language"),
    ("zoneinfo", "Time zone", "off"),
    ("phone_number", "Phone number", "tel"),
    ("birthdate", "Date of birth", "bday"),
    ("website", "Website", "url"),
];

/// Names that belong to the protocol or the form, never to an attribute.
const RESERVED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "email",
    "email_verified",
    "password",
    "csrf",
    "return_to",
    "sid",
    "acr",
    "amr",
    "auth_time",
    "nonce",
    "org",
    "roles",
];

/// The attributes the operator collects, from the `profile_schema` variable: a
/// JSON list like `[{"name": "given_name", "required": true}, {"name":
/// "company", "label": "Company", "max_length": 100}]`. Default: an optional `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSchema(pub Vec<Attribute>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeDecl {
    name: String,
    label: Option<String>,
    #[serde(default)]
    required: bool,
    max_length: Option<usize>,
}

impl ProfileSchema {
    /// Reads and validates `profile_schema`.
    pub fn load(vars: &dyn Variables) -> Result<Self> {
        let Some(text) = config::optional(vars, "profile_schema")? else {
            return Ok(Self(vec![standard("name", false, None)]));
        };
        let bad = |why: String| Error::config("profile_schema", why);
        let decls: Vec<AttributeDecl> =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON ({e})")))?;
        let mut out: Vec<Attribute> = Vec::new();
        for d in decls {
            if RESERVED.contains(&d.name.as_str()) {
                return Err(bad(format!("`{}` is reserved", d.name)));
            }
            if out.iter().any(|a| a.name == d.name) {
                return Err(bad(format!("`{}` appears twice", d.name)));
            }
            let max = d.max_length.unwrap_or(200);
            if !(1..=1000).contains(&max) {
                return Err(bad(format!("max_length of `{}` must be 1 to 1000", d.name)));
            }
            let mut attr = if STANDARD.iter().any(|s| s.0 == d.name) {
                standard(&d.name, d.required, Some(max))
            } else {
                let valid = d.name.len() <= 32
                    && d.name.starts_with(|c: char| c.is_ascii_lowercase())
                    && d.name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !valid {
                    return Err(bad(format!(
                        "`{}` is not a valid attribute name (a-z, 0-9, _)",
                        d.name
                    )));
                }
                Attribute {
                    label: d.name.clone(),
                    name: d.name,
                    required: d.required,
                    max_length: max,
                    autocomplete: "off",
                }
            };
            if let Some(label) = d.label.filter(|l| !l.trim().is_empty()) {
                attr.label = label;
            }
            out.push(attr);
        }
        Ok(Self(out))
    }

    /// Validates submitted attributes: required ones present, none too long,
    /// no control characters. Returns the values to store.
    pub fn validate(&self, params: &Params) -> Result<Map<String, Json>> {
        let mut out = Map::new();
        for a in &self.0 {
            let value = params
                .one(&a.name)?
                .map(str::trim)
                .filter(|v| !v.is_empty());
            match value {
                None if a.required => {
                    return Err(Error::bad_request(format!("{} is required.", a.label)));
                }
                None => {}
                Some(v) if v.chars().count() > a.max_length => {
                    return Err(Error::bad_request(format!(
                        "{} must be at most {} characters.",
                        a.label, a.max_length
                    )));
                }
                Some(v) if v.chars().any(char::is_control) => {
                    return Err(Error::bad_request(format!(
                        "{} contains characters that are not allowed.",
                        a.label
                    )));
                }
                Some(v) => {
                    out.insert(a.name.clone(), Json::String(v.to_owned()));
                }
            }
        }
        Ok(out)
    }
}

/// Whether `name` is a standard OpenID Connect profile claim a schema may
/// collect (`given_name`, `locale`, …).
pub fn is_standard_claim(name: &str) -> bool {
    STANDARD.iter().any(|s| s.0 == name)
}

fn standard(name: &str, required: bool, max: Option<usize>) -> Attribute {
    let (_, label, autocomplete) = STANDARD
        .iter()
        .find(|s| s.0 == name)
        .copied()
        .unwrap_or((name, name, "off"));
    Attribute {
        name: name.to_owned(),
        label: label.to_owned(),
        required,
        max_length: max.unwrap_or(200),
        autocomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::SqliteSql;
    use crate::store::schema;
    use std::collections::HashMap;

    #[test]
    fn emails_are_validated_and_normalised() {
        assert_eq!(
            normalise_email("  Ada.Lovelace@Example.COM ").unwrap(),
            "ada.lovelace@example.com"
        );
        assert!(normalise_email("ünïcode@exämple.de").is_ok());
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "@example.com",
            "a@-x.com",
            "a@x..com",
            "<a>@x.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(normalise_email(&long).is_err());
    }

    #[test]
    fn create_is_unique_per_email() {
        let db = SqliteSql::in_memory().unwrap();
        schema::ensure(&db).unwrap();
        let attrs = Map::new();
        let first = create(&db, "a@example.com", Some("h"), &attrs, 1)
            .unwrap()
            .unwrap();
        assert_eq!(first.id.len(), 22);
        assert!(
            create(&db, "a@example.com", Some("h2"), &attrs, 2)
                .unwrap()
                .is_none()
        );
        assert_eq!(by_email(&db, "a@example.com").unwrap().unwrap(), first);
        assert_eq!(
            by_id(&db, &first.id)
                .unwrap()
                .unwrap()
                .password_hash
                .as_deref(),
            Some("h")
        );
        reset_password(&db, &first.id, "h3", 3).unwrap();
        let after = by_id(&db, &first.id).unwrap().unwrap();
        assert_eq!(after.session_generation, 1);
        assert_eq!(after.password_hash.as_deref(), Some("h3"));
    }

    fn vars(schema: &str) -> HashMap<String, String> {
        [("profile_schema".to_string(), schema.to_string())].into()
    }

    #[test]
    fn schema_from_variable() {
        let s = ProfileSchema::load(&vars(r#"[{"name":"given_name","required":true},{"name":"company","label":"Company","max_length":5}]"#)).unwrap();
        assert_eq!(s.0[0].label, "First name");
        assert_eq!(s.0[0].autocomplete, "given-name");
        assert_eq!(s.0[1].label, "Company");
        let ok = s
            .validate(&Params::parse(b"given_name=Ada&company=ACME").unwrap())
            .unwrap();
        assert_eq!(ok["given_name"], "Ada");
        assert!(
            s.validate(&Params::parse(b"company=ACME").unwrap())
                .is_err()
        );
        assert!(
            s.validate(&Params::parse(b"given_name=Ada&company=TooLong").unwrap())
                .is_err()
        );
        assert!(
            s.validate(&Params::parse(b"given_name=A%00da").unwrap())
                .is_err()
        );
        for bad in [
            r#"[{"name":"email"}]"#,
            r#"[{"name":"Bad Name"}]"#,
            r#"[{"name":"x"},{"name":"x"}]"#,
            "nope",
            r#"[{"name":"x","typo":1}]"#,
        ] {
            assert!(
                matches!(ProfileSchema::load(&vars(bad)), Err(Error::Config { name, .. }) if name == "profile_schema"),
                "{bad}"
            );
        }
        assert_eq!(
            ProfileSchema::load(&HashMap::new()).unwrap().0[0].name,
            "name"
        );
    }
}
