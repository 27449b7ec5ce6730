"""The raw baseline of the list benchmarks: the product's own SQL through psycopg, orjson out.

A WSGI app served by the same gunicorn as the product (tests/benchmarks/test_volume.py):
for each list path it runs the SQL the product ran for that page (captured, with its
parameters) on one persistent connection per worker and writes the rows with orjson.
No authentication, no permissions, no serializers: the floor the product is compared to.
"""

import json
import os

import orjson
import psycopg

QUERIES = json.loads(os.environ.get("BASELINE_QUERIES", "{}"))
_connection = None


def application(environ, start_response):
    global _connection
    if _connection is None:
        _connection = psycopg.connect(os.environ["BASELINE_DSN"], autocommit=True)
    statements = QUERIES.get(environ["PATH_INFO"])
    if statements is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such list"]
    payload = {}
    with _connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            columns = [column.name for column in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            if len(rows) == 1 and len(columns) == 1:
                payload["count"] = rows[0][columns[0]]
            else:
                payload["results"] = rows
    body = orjson.dumps(payload, default=str)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
