//! What agents use: listing the APIs, requests with query parameters and JSON bodies,
//! responses of every kind (JSON, problem+JSON, text, broken JSON, binary, non-2xx),
//! `http_fetch` off by default and held to its host allowlist, and OpenAPI operations as
//! tools.

use rampart_core::Toolbox;
use serde_json::{Value, json};

use crate::support::{Fixture, call, caller, local_api, request, toolbox};

#[tokio::test]
async fn list_apis_shows_what_may_be_called_and_no_credential() {
    let fixture = Fixture::start().await;
    let config = json!({"apis": {
        "gh": local_api(&fixture, json!({"paths": ["/repos/**"], "description": "GitHub",
            "auth": {"kind": "bearer", "env": "RAMPART_HTTP_LIST_TOKEN_VAR"}})),
        "crm": local_api(&fixture, json!({})),
    }});
    let toolbox = toolbox(config);
    let listed = call(&toolbox, &caller(&["gh"]), "http_list_apis", json!({})).await.unwrap();
    assert_eq!(
        listed.value,
        json!({"apis": [{
            "name": "gh", "description": "GitHub", "base_url": format!("{}/", fixture.url()),
            "methods": ["GET", "POST"], "paths": ["/repos/**"], "authenticated": true,
            "timeout_ms": 2000, "max_response_bytes": 10_000,
        }]})
    );
    assert!(!listed.text.contains("RAMPART_HTTP_LIST_TOKEN_VAR"), "not even the variable's name");
    let nobody = call(&toolbox, &caller(&[]), "http_list_apis", json!({})).await.unwrap();
    assert_eq!(nobody.value, json!({"apis": []}));
    let names: Vec<String> = toolbox.tools().await.into_iter().map(|tool| tool.name).collect();
    assert_eq!(names, ["http_list_apis", "http_request"], "http_fetch is off by default");
}

#[tokio::test]
async fn responses_of_every_kind() {
    let fixture = Fixture::start().await;
    let toolbox = toolbox(json!({"apis": {"local": local_api(&fixture, json!({}))}}));
    let agent = caller(&["local"]);

    let json = request(&toolbox, &agent, "local", "GET", "/json").await.unwrap();
    assert_eq!((json.value["status"].clone(), json.is_error), (json!(200), false));
    assert_eq!(json.value["body"], json!({"ok": true, "items": [1, 2, 3]}));
    assert!(json.text.starts_with("HTTP 200 OK\ncontent-length: "), "{}", json.text);

    let text = request(&toolbox, &agent, "local", "GET", "/text").await.unwrap();
    assert_eq!(text.value["body"], "hello, plain text");
    assert_eq!(text.value["headers"]["content-type"], "text/plain; charset=utf-8");

    let broken = request(&toolbox, &agent, "local", "GET", "/bad-json").await.unwrap();
    assert_eq!(broken.value["body"], "{not json", "JSON that does not parse comes back as text");

    let binary = request(&toolbox, &agent, "local", "GET", "/binary").await.unwrap();
    assert_eq!(binary.value["body"], "[binary body: 5 bytes of image/png, not shown]");

    let problem = request(&toolbox, &agent, "local", "GET", "/problem").await.unwrap();
    assert!(problem.is_error, "a non-2xx status is an error result");
    assert_eq!(problem.value["status"], 404);
    assert_eq!(problem.value["body"], json!({"title": "Not Found", "status": 404}));
    assert!(problem.text.starts_with("HTTP 404 Not Found\n"), "{}", problem.text);

    for code in [400, 401, 403, 429, 500, 503] {
        let failed = request(&toolbox, &agent, "local", "GET", &format!("/status/{code}")).await.unwrap();
        assert!(failed.is_error, "{code}");
        assert_eq!(failed.value["status"], code);
    }
}

#[tokio::test]
async fn query_parameters_and_json_bodies() {
    let fixture = Fixture::start().await;
    let toolbox = toolbox(json!({"apis": {"local": local_api(&fixture, json!({}))}}));
    let agent = caller(&["local"]);
    let query = json!({"q": "a b&c=d", "tag": ["x", "y"], "n": 3, "flag": true, "skip": null});
    let arguments = json!({"api": "local", "method": "GET", "path": "/echo", "query": query});
    let result = call(&toolbox, &agent, "http_request", arguments).await.unwrap();
    assert_eq!(result.value["body"]["query"], "q=a+b%26c%3Dd&tag=x&tag=y&n=3&flag=true");

    let body = json!({"name": "widget", "tags": ["a"], "price": 1.5});
    let arguments = json!({"api": "local", "method": "post", "path": "/items", "json_body": body});
    let created = call(&toolbox, &agent, "http_request", arguments).await.unwrap();
    assert_eq!(created.value["status"], 201);
    assert_eq!(created.value["body"]["created"], body);
    let seen = fixture.requests().pop().unwrap();
    assert_eq!(seen.headers.get("content-type").map(String::as_str), Some("application/json"));

    let arguments = json!({"api": "local", "method": "GET", "path": "/echo", "json_body": {"a": 1}});
    let error = call(&toolbox, &agent, "http_request", arguments).await.unwrap_err();
    assert_eq!(error, "Invalid: json_body: a GET request has no body");
    let arguments = json!({"api": "local", "method": "GET", "path": "/echo", "query": {"a": {"b": 1}}});
    let error = call(&toolbox, &agent, "http_request", arguments).await.unwrap_err();
    assert!(error.starts_with("Invalid: query parameter 'a'"), "{error}");
    let arguments = json!({"api": "local", "method": "GET", "path": "/echo", "headers": {"Host": "evil"}});
    let error = call(&toolbox, &agent, "http_request", arguments).await.unwrap_err();
    assert!(error.starts_with("Invalid: unknown field `headers`"), "agents cannot set headers: {error}");
}

#[tokio::test]
async fn http_fetch_is_off_by_default_and_held_to_its_allowlist() {
    let disabled = toolbox(json!({}));
    let error = call(&disabled, &caller(&["*"]), "http_fetch", json!({"url": "https://docs.rs/"})).await.unwrap_err();
    assert_eq!(error, "NotFound: tool 'http_fetch'");

    let toolbox = toolbox(json!({"fetch": {"enabled": true, "hosts": ["docs.rs", "*.example.com"]}}));
    assert!(toolbox.tools().await.iter().any(|tool| tool.name == "http_fetch"));
    let agent = caller(&["fetch:docs.rs", "fetch:evil.com", "fetch:a.example.com"]);
    for url in ["https://evil.com/", "https://docs.rs.evil.com/", "https://example.com/", "https://a.example.com.evil/"]
    {
        let error = call(&toolbox, &agent, "http_fetch", json!({"url": url})).await.unwrap_err();
        assert!(error.starts_with("refused: host '") || error.starts_with("Denied: "), "{url}: {error}");
    }
    let error = call(&toolbox, &agent, "http_fetch", json!({"url": "https://evil.com/"})).await.unwrap_err();
    assert_eq!(error, "refused: host 'evil.com' is not on the fetch allowlist (docs.rs, *.example.com)");
    let error = call(&toolbox, &caller(&["gh"]), "http_fetch", json!({"url": "https://docs.rs/"})).await.unwrap_err();
    assert_eq!(error, "Denied: permission denied: HTTP API 'fetch:docs.rs'");
    let error = call(&toolbox, &agent, "http_fetch", json!({"url": "not a url"})).await.unwrap_err();
    assert!(error.starts_with("Invalid: url: "), "{error}");
    let listed = call(&toolbox, &agent, "http_list_apis", json!({})).await.unwrap();
    assert_eq!(listed.value["fetch_hosts"], json!(["docs.rs", "*.example.com"]));
}

const PETSTORE: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "Pets", "version": "1"},
  "paths": {
    "/pets": {
      "get": {"operationId": "listPets", "summary": "List pets",
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}, "description": "How many"},
                       {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}]},
      "post": {"operationId": "createPet", "summary": "Create a pet",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}}
    },
    "/pets/{petId}": {
      "parameters": [{"$ref": "#/components/parameters/PetId"}],
      "get": {"operationId": "getPet", "description": "One pet by id"},
      "delete": {"operationId": "deletePet"}
    }
  },
  "components": {
    "parameters": {"PetId": {"name": "petId", "in": "path", "required": true, "schema": {"type": "string"}}},
    "schemas": {"Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
  }
}"##;

#[tokio::test]
async fn openapi_operations_become_tools_within_the_allowlists() {
    let fixture = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pets.json");
    std::fs::write(&spec, PETSTORE).unwrap();
    let api = local_api(&fixture, json!({"openapi": spec.to_str().unwrap(), "paths": ["/pets", "/pets/*"]}));
    let toolbox = toolbox(json!({"apis": {"pets": api}}));
    let tools: Vec<(String, Value)> = toolbox
        .tools()
        .await
        .into_iter()
        .filter(|tool| tool.name.starts_with("pets_"))
        .map(|tool| (tool.name, Value::Object(tool.input_schema)))
        .collect();
    let names: Vec<&str> = tools.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["pets_createPet", "pets_getPet", "pets_listPets"], "DELETE is not an allowed method");
    let get_pet = &tools[1].1;
    assert_eq!(get_pet["required"], json!(["petId"]));
    assert_eq!(get_pet["properties"]["petId"], json!({"type": "string"}));
    let create = &tools[0].1;
    assert_eq!(create["properties"]["json_body"], json!({"$ref": "#/$defs/Pet"}));
    assert_eq!(create["$defs"]["Pet"]["required"], json!(["name"]));

    let agent = caller(&["pets"]);
    let listed = call(&toolbox, &agent, "pets_listPets", json!({"limit": 2})).await.unwrap();
    assert_eq!(listed.value["body"]["query"], "limit=2");
    let pet = call(&toolbox, &agent, "pets_getPet", json!({"petId": "rex 1"})).await.unwrap();
    assert_eq!(pet.value["body"]["path"], "/pets/rex%201");
    let created = call(&toolbox, &agent, "pets_createPet", json!({"json_body": {"name": "rex"}})).await.unwrap();
    assert_eq!(created.value["body"]["body"], r#"{"name":"rex"}"#);

    for (arguments, expected) in [
        (json!({"petId": ".."}), "path refused: the path may not contain a '..' segment"),
        (json!({"petId": "a/../../admin"}), "path refused: the path may not encode '/' (%2F)"),
        (json!({}), "Invalid: missing field `petId`"),
        (json!({"petId": "x", "extra": 1}), "Invalid: unknown field `extra`"),
    ] {
        let error = call(&toolbox, &agent, "pets_getPet", arguments.clone()).await.unwrap_err();
        assert_eq!(error, expected, "{arguments}");
    }
    let error = call(&toolbox, &agent, "pets_createPet", json!({})).await.unwrap_err();
    assert_eq!(error, "Invalid: missing field `json_body`");
    let error = call(&toolbox, &caller(&[]), "pets_listPets", json!({})).await.unwrap_err();
    assert!(error.starts_with("Denied: "), "the API's scope is checked: {error}");
}
