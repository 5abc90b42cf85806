"""The OpenAPI 3.1 document of the gateway, generated from the wire models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from chorus.gateway.completions_api import CompletionsRequest
from chorus.gateway.openai_wire import ChatRequest, EmbeddingsRequest
from chorus.gateway.responses_api import ResponsesRequest

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]},
                       "code": {"type": ["string", "null"]}},
    }},
}
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _errors(*codes: int) -> dict[str, Any]:
    body = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    return {str(c): {"description": "an OpenAI error body", "content": body} for c in codes}


def openapi_document(names: list[str], *, secured: bool) -> dict[str, Any]:
    """The document; ``names`` (the models served) become the enum of ``model``."""
    components: dict[str, Any] = {"Error": _ERROR}
    chat = _schema(ChatRequest, components)
    emb = _schema(EmbeddingsRequest, components)
    responses = _schema(ResponsesRequest, components)
    legacy = _schema(CompletionsRequest, components)
    if names:
        for request in ("ChatRequest", "ResponsesRequest", "CompletionsRequest"):
            components[request]["properties"]["model"]["enum"] = names
    json_ok = {"application/json": {"schema": _ANY_OBJECT}}
    fail = (400, 401, 403, 404, 429, 502, 503, 504)
    paths: dict[str, Any] = {
        "/v1/chat/completions": {"post": {
            "operationId": "createChatCompletion",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": chat}}},
            "responses": {"200": {"description": "a chat completion, or an SSE stream",
                                  "content": {**json_ok,
                                              "text/event-stream": {"schema": {
                                                  "type": "string"}}}},
                          **_errors(*fail)},
        }},
        "/v1/responses": {"post": {
            "operationId": "createResponse",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": responses}}},
            "responses": {"200": {"description": "a response, or an SSE stream of events",
                                  "content": {**json_ok,
                                              "text/event-stream": {"schema": {
                                                  "type": "string"}}}},
                          **_errors(*fail)},
        }},
        "/v1/completions": {"post": {
            "operationId": "createCompletion",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": legacy}}},
            "responses": {"200": {"description": "a text completion, or an SSE stream",
                                  "content": {**json_ok,
                                              "text/event-stream": {"schema": {
                                                  "type": "string"}}}},
                          **_errors(*fail)},
        }},
        "/v1/embeddings": {"post": {
            "operationId": "createEmbedding",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": emb}}},
            "responses": {"200": {"description": "embeddings", "content": json_ok},
                          **_errors(*fail)},
        }},
        "/v1/models": {"get": {
            "operationId": "listModels",
            "responses": {"200": {"description": "the systems and models served",
                                  "content": json_ok}, **_errors(401)},
        }},
        "/v1/models/{model}": {"get": {
            "operationId": "retrieveModel",
            "parameters": [{"name": "model", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "one model", "content": json_ok},
                          **_errors(401, 403, 404)},
        }},
        "/health": {"get": {"operationId": "health", "security": [],
                            "responses": {"200": {"description": "ok", "content": json_ok}}}},
        "/metrics": {"get": {"operationId": "metrics", "responses": {
            "200": {"description": "Prometheus text",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            **_errors(401)}}},
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "chorus gateway", "version": "1",
                 "description": "OpenAI-compatible Chat Completions, Responses, "
                                "Completions and Embeddings over chorus systems."},
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    return doc
