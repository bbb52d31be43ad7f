//! The OpenAPI 3.1 document of `/v1`, generated from the handlers'
//! `#[utoipa::path]` attributes and the model's schemas, served at
//! `GET /v1/openapi.json` and checked in as `docs/openapi.json`.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required};
use utoipa::{OpenApi as _, ToSchema};

use keyong_model::api::ApiError;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "keyong",
        description = "keyong's job API: a privacy-preserving compute sandbox for the authorised operation of \
                       public data (公共数据资源授权运营). Raw data never leaves the domain; data can be used but \
                       not seen (原始数据不出域、数据可用不可见).\n\nEvery request carries `Authorization: Bearer \
                       TOKEN` unless its operation says otherwise. Every error is `{code, message}`: `code` is \
                       one of `ErrorCode` and is stable; `message` is for people and never contains row-level \
                       data.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ApiError, keyong_model::ErrorCode))
)]
struct Base;

/// The document's fixed part: title, description, shared schemas.
pub(crate) fn base() -> OpenApi {
    Base::openapi()
}

/// Completes the collected document: the bearer scheme (required by every
/// operation that does not opt out with `security(())`), and the error
/// responses every operation may give, all with the [`ApiError`] body.
pub(crate) fn finish(mut api: OpenApi) -> OpenApi {
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A token from `keyong bootstrap`, `POST /v1/users` or `POST /v1/login`."))
                .build(),
        ),
    );
    api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    let error = |description: &str| -> RefOr<Response> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name(ApiError::name()))).build(),
            )
            .build()
            .into()
    };
    for (path, item) in api.paths.paths.iter_mut() {
        if let Some(op) = item.post.as_mut()
            && !crate::idempotency::REFUSED.contains(&path.as_str())
        {
            op.parameters.get_or_insert_with(Vec::new).push(idempotency_key().into());
        }
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
            let responses = &mut op.responses.responses;
            // A response must say what it is (OpenAPI requires a description).
            for (status, response) in responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = match status.as_str() {
                        "201" => "Created.",
                        "202" => "Accepted.",
                        _ => "Done.",
                    }
                    .into();
                }
            }
            if !public {
                responses.insert("401".into(), error("No valid bearer token (`unauthenticated`)."));
            }
            responses.insert("4XX".into(), error("Refused; `code` says why (see `ErrorCode`)."));
            responses.insert("5XX".into(), error("A fault of the platform (`internal`, `resource_exhausted`)."));
        }
    }
    api
}

/// The optional `Idempotency-Key` header of a POST ([`crate::idempotency`]).
fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Send the same key (1 to 255 visible ASCII characters, e.g. a UUID) to retry this request safely: \
             the first success is answered again, for a day, with `Idempotent-Replayed: true`. Another request \
             with the key: 422 `idempotency_key_reused`; while the first still runs: 409 `conflict`.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
}

/// The document as checked in: pretty JSON with a final newline.
pub fn document() -> String {
    let (_, api) = crate::routes::api_router().split_for_parts();
    let mut text = finish(api).to_pretty_json().expect("the document serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is the document the code generates; run
    /// `cargo xtask openapi` after changing the API.
    #[test]
    fn checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == super::document(),
            "docs/openapi.json is out of date: run `cargo xtask openapi` and commit the result"
        );
    }
}
