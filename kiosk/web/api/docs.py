"""The API's own description: the OpenAPI document generated from the code
(/api/v1/openapi.json), a page that reads it for people (/api/v1/docs: rendered on
the server, no script, so the app's Content-Security-Policy stays as it is), and a
page for each problem type (/api/v1/problems/<name>), where a problem's `type` leads."""
from __future__ import annotations

import json

from flask import Blueprint as FlaskBlueprint
from flask import Response, abort, current_app, render_template

from kiosk.web.api import bp
from kiosk.web.api.problems import ALL_TYPES


def _spec() -> dict:
    return current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def openapi_json():
    if "kodomat_openapi" not in current_app.extensions:
        current_app.extensions["kodomat_openapi"] = json.dumps(_spec(), ensure_ascii=False, indent=1)
    return Response(current_app.extensions["kodomat_openapi"], mimetype="application/json")


def _type_of(schema: dict) -> str:
    """A property's type as a reader of the page wants it: "date or null", "CodeRow[]"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema:
        return " & ".join(_type_of(part) for part in schema["allOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        kind = _type_of(schema.get("items", {})) + "[]"
    elif schema.get("format"):
        kind = f"{kind} ({schema['format']})"
    if schema.get("enum"):
        kind += ": " + ", ".join(str(value) for value in schema["enum"] if value is not None)
    return kind + (" | null" if schema.get("nullable") else "")


def _fields(schema: dict) -> list[dict]:
    required = set(schema.get("required", []))
    return [{"name": name, "type": _type_of(prop), "required": name in required,
             "description": prop.get("description", "")} for name, prop in schema.get("properties", {}).items()]


def _operations(spec: dict) -> list[dict]:
    found = []
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            body = operation.get("requestBody", {}).get("content", {})
            responses = [{"status": status, "description": answer.get("description", ""),
                          "content": [(media, _type_of(content.get("schema", {})))
                                      for media, content in answer.get("content", {}).items()]}
                         for status, answer in operation.get("responses", {}).items()]
            found.append({"method": method.upper(), "path": path, "summary": operation.get("summary", ""),
                          "description": operation.get("description", ""),
                          "secured": bool(operation.get("security")),
                          "parameters": item.get("parameters", []) + operation.get("parameters", []),
                          "body": [(media, _type_of(content.get("schema", {}))) for media, content in body.items()],
                          "responses": sorted(responses, key=lambda answer: answer["status"])})
    return found


def docs_page():
    spec = _spec()
    schemas = {name: _fields(schema) for name, schema in spec.get("components", {}).get("schemas", {}).items()}
    return render_template("api/docs.html", spec=spec, operations=_operations(spec), schemas=schemas,
                           problem_types=sorted(ALL_TYPES.values(), key=lambda kind: (kind.status, kind.name)))


def problem_page(name: str):
    kind = ALL_TYPES.get(name)
    if kind is None:
        abort(404)
    return render_template("api/problem.html", kind=kind)


# Added to the blueprint as Flask adds rules, so the OpenAPI document lists only the API's operations.
for rule, endpoint, view in (("/openapi.json", "openapi_json", openapi_json), ("/docs", "docs", docs_page),
                             ("/problems/<name>", "problem_type", problem_page)):
    FlaskBlueprint.add_url_rule(bp, rule, endpoint, view, methods=["GET"])
PUBLIC_ENDPOINTS = {f"api.{endpoint}" for endpoint in ("openapi_json", "docs", "problem_type")}
