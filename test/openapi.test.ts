// GET /openapi.json: an OpenAPI 3.1 document generated from the route schemas, valid, and listing every
// route the server registers; the same schemas validate requests, with the Apify envelope.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { api, createJob, startTestServer, type TestServer } from './helpers/server.js';

interface Operation {
  summary?: string;
  parameters?: { in: string; name: string }[];
  responses?: Record<string, unknown>;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

/** `/v2/logs/:id` → `/v2/logs/{id}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('GET /openapi.json', () => {
  let server: TestServer;
  let doc: OpenApiDocument;
  // Every route as Fastify registers it, seen through its onRoute hook on the server's instance (Fastify
  // announces each new instance on this diagnostics channel before anything is registered on it).
  const routes: RouteOptions[] = [];
  const onInstance = (message: unknown) => {
    (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', (route) => void routes.push(route));
  };

  before(async () => {
    subscribe('fastify.initialization', onInstance);
    try {
      server = await startTestServer();
    } finally {
      unsubscribe('fastify.initialization', onInstance);
    }
    const res = await fetch(`${server.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    doc = (await res.json()) as OpenApiDocument;
  });
  after(() => server?.stop());

  test('is a valid OpenAPI 3.1 document', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Parameters<Validator['validate']>[0]);
    assert.deepEqual(result.errors, undefined);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
  });

  test('describes every registered route, each from its own schema', () => {
    const documented = routes.filter((r) => !r.schema?.hide);
    assert.ok(documented.length >= 15, `routes seen: ${documented.length}`);
    for (const route of documented) {
      for (const method of [route.method].flat()) {
        // Fastify adds a HEAD to every GET; it answers as the GET does.
        if (method === 'HEAD') continue;
        const path = openApiPath(route.url);
        const operation = doc.paths[path]?.[method.toLowerCase()];
        assert.ok(operation, `${method} ${route.url} is in /openapi.json`);
        assert.ok(route.schema && 'summary' in route.schema, `${method} ${route.url} has a schema with a summary`);
        assert.equal(operation.summary, (route.schema as { summary: string }).summary);
        for (const [, param] of route.url.matchAll(/:(\w+)/g)) {
          assert.ok(operation.parameters?.some((p) => p.in === 'path' && p.name === param), `${method} ${route.url} describes :${param}`);
        }
        // A success response, but for the storage stand-ins, which exist to answer 404 (src/api/storages.ts).
        const codes = Object.keys(operation.responses ?? {});
        const standIn = codes.join() === '404' && /^\/v2\/(datasets|key-value-stores|request-queues)\/:id$/.test(route.url);
        assert.ok(standIn || codes.some((code) => /^2\d\d$/.test(code)), `${method} ${route.url} has a success response`);
      }
    }
    // What the document leaves out: the 405 answers of documented paths, CORS preflights, the viewer's static files.
    for (const route of routes.filter((r) => r.schema?.hide)) {
      const methods = [route.method].flat();
      const reason =
        methods.every((m) => m === 'OPTIONS') ? 'cors' : route.url === '/viewer/*' ? 'static' : doc.paths[openApiPath(route.url)] ? '405' : undefined;
      assert.ok(reason, `hidden route ${methods.join(',')} ${route.url} is a 405, CORS or static route`);
      if (reason === '405') {
        for (const m of methods) assert.equal(doc.paths[openApiPath(route.url)]![m.toLowerCase()], undefined, `${m} ${route.url} is a 405`);
      }
    }
  });

  test('the schemas validate requests, answering in the Apify envelope', async () => {
    const id = await createJob(server);
    const error = async (res: Response) => {
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      return ((await res.json()) as { error: { type: string; message: string } }).error;
    };
    const bad = await fetch(`${server.url}/v2/logs/${id}?stream=maybe`);
    assert.equal(bad.status, 400);
    assert.deepEqual(await error(bad), { type: 'invalid-input', message: 'Parameter "stream" must be a boolean (true, false, 1 or 0).' });

    const offset = await api(server, server.token)(`/v2/logs/${id}/chunks`, { method: 'POST', body: 'x', headers: { 'x-log-offset': '-1' } });
    assert.equal(offset.status, 400);
    assert.deepEqual(await error(offset), { type: 'invalid-input', message: 'Header "X-Log-Offset" must be a non-negative integer.' });

    // No type coercion: a string is not an integer.
    const put = await api(server, server.token)(`/v2/actor-builds/${id}`, { method: 'PUT', json: { status: 'FAILED', exitCode: '5' } });
    assert.equal(put.status, 400);
    assert.deepEqual(await error(put), { type: 'invalid-input', message: 'Field "exitCode" must be an integer.' });

    // A malformed id cannot exist: the route's 404, before any parameter is looked at.
    const malformed = await fetch(`${server.url}/v2/actor-builds/not-an-id!?waitForFinish=soon`);
    assert.equal(malformed.status, 404);
    assert.deepEqual(await error(malformed), { type: 'record-not-found', message: 'Actor build was not found' });

    // What the handlers answered before there were schemas: a PUT without a body is told the field it needs,
    // a create's status is named as a new job's, and a JSON string is JSON (400), not a text body (415).
    const empty = await api(server, server.token)(`/v2/actor-builds/${id}`, { method: 'PUT' });
    assert.equal(empty.status, 400);
    assert.match((await error(empty)).message, /^Field "status" must be one of RUNNING, /);
    const create = await api(server, server.token)('/v2/actor-runs', { method: 'POST', json: { status: 'DONE' } });
    assert.deepEqual(await error(create), { type: 'invalid-input', message: 'Field "status" of a new job must be READY or RUNNING.' });
    const string = await api(server, server.token)('/v2/actor-runs', { method: 'POST', json: 'RUNNING' });
    assert.deepEqual(await error(string), { type: 'invalid-input', message: 'The request body must be a JSON object.' });
    // A list checks the token before its query.
    const list = await fetch(`${server.url}/v2/actor-runs?limit=many`);
    assert.equal(list.status, 401);
    assert.equal((await api(server, server.token)('/v2/actor-runs?limit=many')).status, 400);

    // Valid values still pass, as strings.
    assert.equal((await fetch(`${server.url}/v2/logs/${id}?stream=0&raw=TRUE&download=`)).status, 200);
  });
});
