//! Profile attributes: the operator's `profile_schema`, edited with exactly
//! the validation of sign-up.

use serde_json::{Map, Value as Json, json};

use crate::Env;
use crate::accounts::Auth;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::events::{self, Kind};
use crate::identity::Identity;
use crate::store::identities;
use crate::web::Params;

/// Validates the submitted attributes as sign-up does ([`crate::identity::
/// ProfileSchema::validate`]) and stores them: the schema's attributes are
/// replaced by what was sent (an empty or missing optional one is removed),
/// others (such as claims from an upstream provider) are kept. Returns the
/// attributes stored. Nothing is written when a value is invalid.
pub fn save(
    env: &Env,
    auth: &Auth,
    who: &Identity,
    params: &Params,
    device: &Device,
) -> Result<Map<String, Json>> {
    let values = auth.schema()?.validate(params)?;
    let mut attributes = who.attributes.clone();
    for a in &auth.schema()?.0 {
        attributes.remove(&a.name);
    }
    attributes.extend(values);
    if attributes == who.attributes {
        return Ok(attributes);
    }
    let changed: Vec<&str> = auth
        .schema()?
        .0
        .iter()
        .filter(|a| attributes.get(&a.name) != who.attributes.get(&a.name))
        .map(|a| a.name.as_str())
        .collect();
    identities::set_attributes(env.sql, &who.id, &attributes, env.now)?;
    events::record(
        env,
        &who.id,
        Kind::ProfileChanged,
        json!({ "attributes": changed }),
        device,
    )?;
    Ok(attributes)
}

/// The attributes of an API call (`{"attributes": {"name": "Ada"}}`) as
/// form fields, so that they meet the same validation as the form. Each
/// value is a string (or `null`, for none); a name the schema does not have
/// is refused.
pub fn params_from_json(auth: &Auth, attributes: &Map<String, Json>) -> Result<Params> {
    let mut pairs = Vec::new();
    for (name, value) in attributes {
        if !auth.schema()?.0.iter().any(|a| &a.name == name) {
            return Err(Error::bad_request(format!(
                "`{name}` is not an attribute of this profile."
            )));
        }
        match value {
            Json::String(s) => pairs.push((name.clone(), s.clone())),
            Json::Null => {}
            _ => {
                return Err(Error::bad_request(format!(
                    "`{name}` must be a string (or null)."
                )));
            }
        }
    }
    Ok(Params::from_pairs(pairs))
}

/// The schema's attributes with their current values, for the form and
/// the API.
pub fn fields<'a>(auth: &'a Auth, who: &Identity) -> Result<Vec<Field<'a>>> {
    Ok(auth
        .schema()?
        .0
        .iter()
        .map(|a| Field {
            attribute: a,
            value: who
                .attributes
                .get(&a.name)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect())
}

/// One attribute of the profile and its value.
pub struct Field<'a> {
    /// The schema's declaration.
    pub attribute: &'a crate::identity::Attribute,
    /// The current value (empty when unset).
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::security_events;
    use crate::testkit::World;

    fn setup(w: &World) -> (Auth<'_>, Identity) {
        let auth = Auth::load(&w.vars).unwrap();
        let mut attrs = Map::new();
        attrs.insert("name".into(), "Ada".into());
        attrs.insert("upstream_claim".into(), "kept".into());
        let who = crate::identity::create(&w.sql, "ada@example.com", None, &attrs, 0)
            .unwrap()
            .unwrap();
        (auth, who)
    }

    #[test]
    fn saves_valid_attributes_and_keeps_others() {
        let w = World::with(&[(
            "profile_schema",
            r#"[{"name":"name","required":true,"max_length":10},{"name":"company"}]"#,
        )]);
        let (auth, who) = setup(&w);
        let d = Device::addr("192.0.2.1");
        let form = Params::parse(b"name=Ada+L&company=ACME").unwrap();
        save(&w.env(5), &auth, &who, &form, &d).unwrap();
        let after = identities::by_id(&w.sql, &who.id).unwrap().unwrap();
        assert_eq!(after.attributes["name"], "Ada L");
        assert_eq!(after.attributes["company"], "ACME");
        assert_eq!(after.attributes["upstream_claim"], "kept");
        let ev = security_events::page(&w.sql, &who.id, None, 10).unwrap();
        assert_eq!(ev[0].kind, "profile_changed");

        // Invalid input: nothing saved, no event.
        for bad in [&b"company=X"[..], b"name=Far+too+long+a+name", b"name=A%01"] {
            let form = Params::parse(bad).unwrap();
            assert!(matches!(
                save(&w.env(6), &auth, &after, &form, &d),
                Err(Error::BadRequest(_))
            ));
        }
        assert_eq!(identities::by_id(&w.sql, &who.id).unwrap().unwrap(), after);
        assert_eq!(
            security_events::page(&w.sql, &who.id, None, 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn json_attributes_meet_the_same_rules() {
        let w = World::new();
        let (auth, _) = setup(&w);
        let obj = |v: Json| v.as_object().unwrap().clone();
        let p = params_from_json(&auth, &obj(json!({"name": "Ada"}))).unwrap();
        assert_eq!(p.one("name").unwrap(), Some("Ada"));
        assert!(params_from_json(&auth, &obj(json!({"email": "x@y.z"}))).is_err());
        assert!(params_from_json(&auth, &obj(json!({"name": 5}))).is_err());
        assert!(
            params_from_json(&auth, &obj(json!({"name": null})))
                .unwrap()
                .pairs()
                .is_empty()
        );
    }
}
