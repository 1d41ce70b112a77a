use relaywatch_tests::spawn_app;
use serde_json::Value;

fn checked_in() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let text = std::fs::read_to_string(path).expect("openapi/openapi.json exists");
    serde_json::from_str(&text).expect("openapi/openapi.json is JSON")
}

#[tokio::test]
async fn served_spec_matches_the_checked_in_file() {
    let app = spawn_app().await;
    let served: Value = app.served_spec().await;
    assert!(
        served == checked_in(),
        "openapi/openapi.json is out of date: run `cargo run -p relaywatch-cli -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_documents_its_errors_and_security() {
    let spec = relaywatch_api::openapi::document();
    let json: Value = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["openapi"], "3.1.0");
    assert!(json["components"]["securitySchemes"]["bearer"].is_object());
    let public = ["/healthz", "/readyz", "/metrics", "/v1/auth/login"];
    for (path, item) in json["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} has no success response"
            );
            if public.contains(&path.as_str()) {
                continue;
            }
            assert!(
                op["security"].is_array(),
                "{method} {path} declares no security"
            );
            for status in ["401", "403"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
            if path.contains("{id}") {
                assert!(
                    responses.contains_key("404"),
                    "{method} {path} does not document 404"
                );
            }
            if ["post", "patch"].contains(&method.as_str()) {
                assert!(
                    responses.contains_key("422"),
                    "{method} {path} does not document 422"
                );
                assert!(
                    op["requestBody"].is_object(),
                    "{method} {path} has no request body schema"
                );
            }
        }
    }
}
