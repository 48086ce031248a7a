//! `PATCH /customers/{id}`: a JSON object holding only the fields to change.
//!
//! [`merge`] lays the patch over the stored customer (in its response shape, which uses the
//! request's field names), runs the full `POST` validation on the result, and returns a
//! [`CustomerPatch`] carrying only the fields the client sent, so a concurrent patch of other
//! fields is not overwritten. `null` clears an optional field (and is `required` for a
//! required one); `test` is an alias of `isTest`; `id` cannot change; `sync`, and any key
//! the API does not know, is 400.

use chrono::NaiveDate;
use outdial_domain::customer::INPUT_FIELDS;
use outdial_domain::task::TaskType;
use outdial_domain::{Customer, CustomerInput, ErrorCode, FieldError, Violations};
use outdial_store::CustomerPatch;
use serde_json::{Map, Value};

use crate::ApiError;
use crate::body::typed;

/// Checks `body` against `stored` and returns the patch to store.
pub(crate) fn merge(
    stored: &Customer,
    body: Map<String, Value>,
    task_types: &[TaskType],
    today: NaiveDate,
) -> Result<CustomerPatch, ApiError> {
    let mut v = Violations::new();
    for key in body.keys() {
        // Every field of a create but `sync` (a patch is never read from the LMS).
        if key == "sync" || !INPUT_FIELDS.contains(&key.as_str()) {
            v.push(FieldError::unknown_field(key.as_str()));
        }
    }
    if let Some(id) = body.get("id")
        && id.as_str() != Some(stored.id.as_str())
    {
        v.push(FieldError::new(
            "id",
            ErrorCode::InvalidValue,
            "id cannot change; it names the customer in the path",
        ));
    }
    if !v.is_empty() {
        return Err(ApiError::invalid(v));
    }
    // Type-check the patch on its own, so a wrong type names the patched field.
    let _: CustomerInput = typed(body.clone())?;

    // `Customer` is a struct of plain fields: it always serializes to an object.
    let mut merged = match serde_json::to_value(stored).map_err(|e| ApiError::internal(&e))? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let sent: Vec<String> = body.keys().cloned().collect();
    let is_test = match (body.get("isTest"), body.get("test")) {
        (None, None) => None,
        (a, b) => Some(
            a.and_then(Value::as_bool).unwrap_or(false)
                || b.and_then(Value::as_bool).unwrap_or(false),
        ),
    };
    for (key, value) in body {
        if key != "test" {
            merged.insert(key, value);
        }
    }
    if let Some(flag) = is_test {
        merged.insert("isTest".to_owned(), Value::Bool(flag));
    }
    let input: CustomerInput = typed(merged)?;
    let new = input
        .validate(task_types, today)
        .map_err(ApiError::invalid)?;

    let mut patch = CustomerPatch::default();
    for key in sent {
        match key.as_str() {
            "taskType" => patch.task_type = Some(new.task_type.clone()),
            "firstName" => patch.first_name = Some(new.first_name.clone()),
            "lastName" => patch.last_name = Some(new.last_name.clone()),
            "email" => patch.email = Some(new.email.clone()),
            "birthday" => patch.birthday = Some(new.birthday),
            "ssnLastFour" => patch.ssn_last_four = Some(new.ssn_last_four.clone()),
            "timezone" => patch.timezone = Some(new.timezone),
            "phoneNumber" => patch.phone = Some(new.phone.clone()),
            "streetAddress1" => patch.street_address1 = Some(new.street_address1.clone()),
            "streetAddress2" => patch.street_address2 = Some(new.street_address2.clone()),
            "city" => patch.city = Some(new.city.clone()),
            "state" => patch.state = Some(new.state),
            "zipCode" => patch.zip_code = Some(new.zip_code.clone()),
            "doNotCall" => patch.do_not_call = Some(new.do_not_call),
            "isTest" | "test" => patch.is_test = Some(new.is_test),
            "externalMetadata" => patch.external_metadata = Some(new.external_metadata.clone()),
            "loanId" => patch.loan_id = Some(new.loan_id.clone()),
            "loanIds" => patch.loan_ids = Some(new.loan_ids.clone()),
            _ => {} // `id`, checked unchanged above
        }
    }
    Ok(patch)
}
