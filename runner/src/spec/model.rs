//! The system model (SPEC §2): an integrator's description of a business
//! system, so that DPOs write jobs with entity and field names, never tables.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Conditions;

/// A system model: the entities of a business system, their personal data,
/// relations, named criteria, checks and legal holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lethe system model", extend("$id" = "https://lethe.dev/schemas/system.schema.json"))]
pub struct SystemModel {
    /// The version of the model format. Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The name jobs use in `target.system`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"), example = &"retail-crm")]
    pub name: String,
    /// What system this describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The language of fake names, phones and addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
    /// The time zone of stored times without a zone, and of calendar days in
    /// conditions (an IANA name). Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"Europe/Stockholm", example = &"America/Sao_Paulo")]
    pub timezone: Option<String>,
    /// The entities, by the name jobs use.
    pub entities: BTreeMap<String, Entity>,
    /// Named SQL criteria jobs can use in conditions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub criteria: BTreeMap<String, Criterion>,
    /// Named checks jobs can use in `block_if`: a query that returns a row
    /// when the job must not run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Check>,
    /// Legal retention: records that every job ignores, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
}

/// One kind of record (a table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// The table that holds the records.
    #[schemars(example = &"customers")]
    pub table: String,
    /// The primary-key column.
    #[schemars(example = &"id")]
    pub key: String,
    /// What the entity is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The fields jobs may select on or change, by name. A field without a
    /// category can be used in conditions and is never changed.
    #[serde(default)]
    pub fields: BTreeMap<String, Field>,
    /// Relations to rows of other entities that point at this one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub relations: BTreeMap<String, Relation>,
    /// How to deactivate a record (needed by `deactivate` and `keep-login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivate: Option<Deactivate>,
    /// How an anonymized record is marked: anonymize sets these columns on
    /// every record it processes, and later plans leave marked records out
    /// ("anonymized by an earlier run"). Without it, a job that selects by
    /// anything but personal data selects its own anonymized records again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymized: Option<Marker>,
    /// For an entity whose records are change requests: the record each
    /// request changes and how (needed by `rectify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectifies: Option<Rectifies>,
    /// The stations (point-of-sale machines, devices) connected to a record,
    /// each of which must confirm a job that uses `confirmations: [stations]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stations: Option<Stations>,
}

/// A field of an entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The column, when it differs from the field's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The data category (dotted: `contact.email`). Jobs pick fields by
    /// category, matched by dotted prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// How the field is anonymized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// The kind of value stored, for checking strategies and conditions.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<FieldType>,
    /// The column has a unique index: replacements must stay unique.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// The value identifies a person (e-mail, phone, national id): used to
    /// find possible duplicates and in the trace scan after apply.
    #[serde(default, skip_serializing_if = "is_false")]
    pub identifies: bool,
    /// Free text (notes, comments): the trace scan searches it for erased
    /// values as substrings.
    #[serde(default, skip_serializing_if = "is_false")]
    pub free_text: bool,
    /// What the field holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Field {
    /// The column that stores the field named `name`.
    pub fn column<'a>(&'a self, name: &'a str) -> &'a str {
        self.column.as_deref().unwrap_or(name)
    }
}

/// The kind of value a field stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FieldType {
    String,
    Integer,
    Decimal,
    Date,
    Datetime,
    Boolean,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Boolean => "boolean",
        }
    }
}

/// A dotted data category such as `contact.email`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Category(pub String);

impl Category {
    /// Whether this category (as a job writes it) covers `field`'s category:
    /// equal, or a prefix ending at a dot (`contact` covers `contact.email`,
    /// not `contactless`).
    pub fn covers(&self, field: &Category) -> bool {
        field.0 == self.0
            || (field.0.starts_with(&self.0) && field.0.as_bytes().get(self.0.len()) == Some(&b'.'))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Category {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Category".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A data category: lowercase words joined by dots, general to specific.",
            "type": "string",
            "pattern": "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$",
            "examples": ["identity.name", "contact.email", "finance"]
        })
    }
}

/// How a value is replaced when anonymized. Every strategy leaves NULL as
/// NULL; replacements are derived from a keyed hash of the original, so the
/// same original gets the same replacement everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Set to NULL.
    Null,
    /// Replace by a fixed text.
    Redact,
    /// A fake first name in the locale.
    FakeFirstName,
    /// A fake last name in the locale.
    FakeLastName,
    /// A fake full name in the locale.
    FakeName,
    /// A fake phone number in the locale's format.
    FakePhone,
    /// A fake street address in the locale.
    FakeStreet,
    /// A fake city in the locale.
    FakeCity,
    /// A keyed hash (HMAC-SHA256) of the value, as hex.
    Hash,
    /// A unique, valid e-mail address under `.invalid`.
    HashEmail,
    /// Keep the year only: 1985-06-17 becomes 1985-01-01.
    TruncateYear,
    /// Keep the year and month: 1985-06-17 becomes 1985-06-01.
    TruncateMonth,
    /// Leave the value as it is.
    Keep,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Null => "null",
            Strategy::Redact => "redact",
            Strategy::FakeFirstName => "fake-first-name",
            Strategy::FakeLastName => "fake-last-name",
            Strategy::FakeName => "fake-name",
            Strategy::FakePhone => "fake-phone",
            Strategy::FakeStreet => "fake-street",
            Strategy::FakeCity => "fake-city",
            Strategy::Hash => "hash",
            Strategy::HashEmail => "hash-email",
            Strategy::TruncateYear => "truncate-year",
            Strategy::TruncateMonth => "truncate-month",
            Strategy::Keep => "keep",
        }
    }

    /// Strategies whose replacements of distinct values stay distinct, so a
    /// unique column stays unique.
    pub fn keeps_unique(self) -> bool {
        matches!(
            self,
            Strategy::Null | Strategy::Hash | Strategy::HashEmail | Strategy::Keep
        )
    }

    /// The field types the strategy can write (`None`: any).
    pub fn fits(self, kind: FieldType) -> bool {
        match self {
            Strategy::Null | Strategy::Keep => true,
            Strategy::TruncateYear | Strategy::TruncateMonth => {
                matches!(kind, FieldType::Date | FieldType::Datetime)
            }
            _ => kind == FieldType::String,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A locale for fake values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Locale {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "pt_BR")]
    PtBr,
    #[serde(rename = "sv_SE")]
    SvSe,
    #[serde(rename = "ru_RU")]
    RuRu,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::PtBr => "pt_BR",
            Locale::SvSe => "sv_SE",
            Locale::RuRu => "ru_RU",
        }
    }
}

/// A relation: rows of another entity whose `foreign_key` holds this
/// entity's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// The related entity.
    #[schemars(example = &"purchase")]
    pub entity: String,
    /// The column of the related table that holds this entity's key.
    #[schemars(example = &"customer_id")]
    pub foreign_key: String,
    /// What happens to related rows when the record is deleted: `delete`
    /// them (they are owned), `nullify` the foreign key, `keep` them as they
    /// are, or `block` the deletion while any exist.
    pub on_delete: OnDelete,
    /// `login`: the related rows are the record's logins (deactivate unlinks
    /// or deletes them as `on_delete` says; keep-login leaves them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RelationRole>,
}

/// What happens to related rows when a record is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnDelete {
    /// Delete them too (the record owns them; anonymize reaches them).
    Delete,
    /// Set their foreign key to NULL.
    Nullify,
    /// Leave them unchanged.
    Keep,
    /// Refuse to delete a record that has any.
    Block,
}

impl OnDelete {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDelete::Delete => "delete",
            OnDelete::Nullify => "nullify",
            OnDelete::Keep => "keep",
            OnDelete::Block => "block",
        }
    }
}

/// The special role of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RelationRole {
    Login,
}

/// How a record is deactivated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deactivate {
    /// Columns to set, by field name (or column name), to these values.
    #[schemars(example = status_inactive())]
    pub set: BTreeMap<String, serde_json::Value>,
    /// After each batch, deactivate related parent records whose `when` holds
    /// (for example the customer when its last active contract ends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cascade: Vec<Cascade>,
    /// Rows to insert, one per deactivated record (for example an
    /// equipment-removal service order). Values may use `{{ key }}` (the
    /// record's key) and `{{ now }}` (the plan's clock).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insert: Vec<InsertRow>,
}

fn status_inactive() -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([("status".to_owned(), serde_json::json!("inactive"))])
}

/// What a change request changes (see [`Entity::rectifies`]).
///
/// A request is a row of its own: who asked, when, and the new value of
/// each field they changed (NULL where they changed nothing). Rectifying a
/// request copies its non-NULL values onto the record it names, then marks
/// the request so no later run applies it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rectifies {
    /// The entity whose records the requests change.
    #[schemars(example = &"customer")]
    pub entity: String,
    /// The request's column that holds the changed record's key.
    #[schemars(example = &"customer_id")]
    pub foreign_key: String,
    /// The request's fields, each naming the field of the changed record
    /// it holds a new value for.
    #[schemars(example = rectified_fields())]
    pub fields: BTreeMap<String, String>,
    /// Columns of the request set once it is applied, by field (or column)
    /// name (for example its status); text may be `{{ now }}`, the plan's
    /// clock.
    #[schemars(example = status_applied())]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Rows to insert, one per applied request (for example an entry in the
    /// record's history). Values may use `{{ key }}` (the request's key),
    /// `{{ record }}` (the changed record's key) and `{{ now }}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insert: Vec<InsertRow>,
}

fn rectified_fields() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("new_email".to_owned(), "email".to_owned()),
        ("new_phone".to_owned(), "phone".to_owned()),
    ])
}

fn status_applied() -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([("status".to_owned(), serde_json::json!("applied"))])
}

/// Columns that mark a record (see [`Entity::anonymized`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// Columns to set, by field name (or column name), to these values.
    #[schemars(example = status_anonymized())]
    pub set: BTreeMap<String, serde_json::Value>,
}

fn status_anonymized() -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([("status".to_owned(), serde_json::json!("anonymized"))])
}

/// A parent deactivated after its children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cascade {
    /// The parent entity; it must have a relation to this entity.
    #[schemars(example = &"customer")]
    pub entity: String,
    /// Conditions on the parent: deactivate it when they hold.
    pub when: Conditions,
}

/// A side-effect row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertRow {
    /// The entity whose table receives the row.
    #[schemars(example = &"service_order")]
    pub entity: String,
    /// Column values by field (or column) name; strings may use `{{ key }}`
    /// and `{{ now }}`.
    pub values: BTreeMap<String, serde_json::Value>,
}

/// The stations connected to a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stations {
    /// The relation to the station rows.
    pub relation: String,
    /// The field of the station entity that names a station.
    pub name: String,
    /// Only stations matching these conditions (for example active ones).
    #[serde(
        default,
        rename = "where",
        skip_serializing_if = "Conditions::is_empty"
    )]
    pub filter: Conditions,
}

/// A named SQL criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// The entity the criterion selects.
    pub entity: String,
    /// What the criterion means, for reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parameters by name, with their types; values are checked before any
    /// SQL is rendered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamType>,
    /// A SQL boolean expression (a minijinja template): `{{ key }}` is the
    /// record's key column, `{{ param("NAME") }}` a parameter. Values are
    /// always bound parameters, never spliced text.
    pub sql: String,
}

/// The type of a criterion parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ParamType {
    Date,
    Datetime,
    Int,
    Decimal,
    String,
    Bool,
}

impl ParamType {
    /// The type as the connector interface names it.
    pub fn sql(self) -> lethe_connector::ParamType {
        use lethe_connector::ParamType as P;
        match self {
            ParamType::Date => P::Date,
            ParamType::Datetime => P::Datetime,
            ParamType::Int => P::Int,
            ParamType::Decimal => P::Decimal,
            ParamType::String => P::String,
            ParamType::Bool => P::Bool,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Date => "date",
            ParamType::Datetime => "datetime",
            ParamType::Int => "int",
            ParamType::Decimal => "decimal",
            ParamType::String => "string",
            ParamType::Bool => "bool",
        }
    }
}

/// A named check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A read-only SQL query: the check is true when it returns a row.
    #[schemars(example = &"SELECT 1 FROM service_orders LIMIT 1")]
    pub sql: String,
    /// What a true check means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A legal hold: records every job on the entity ignores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// The entity the hold protects.
    pub entity: String,
    /// Why the records are kept (shown in every report).
    #[schemars(example = &"invoice within the 7-year bookkeeping period")]
    pub reason: String,
    /// Conditions on the entity: matching records are held.
    pub ignore_if: Conditions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_match_by_dotted_segment() {
        let c = |s: &str| Category(s.to_owned());
        assert!(c("contact").covers(&c("contact.email")));
        assert!(c("contact.email").covers(&c("contact.email")));
        assert!(!c("contact").covers(&c("contactless")));
        assert!(!c("contact.email").covers(&c("contact")));
    }
}
