// What the fuzz (test/security-fuzz.test.ts) found, pinned down as plain tests so that it stays fixed
// whatever the seed.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { append, createJob, startTestServer, type TestServer } from './helpers/server.js';


/**
 * Sends raw bytes and returns everything the server wrote before it closed (bounded). The client closes its
 * side once a whole answer is in, as clients do (Node ends a connection as soon as the client half-closes,
 * so an answer that takes a moment would never be written).
 */
function exchange(url: string, bytes: string | Buffer, timeoutMs = 10_000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close in ${timeoutMs} ms; got ${JSON.stringify(received.slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (d) => {
      received += d.toString('latin1');
      const head = /^HTTP\/1\.1 \d{3} [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(received);
      const length = Number(/content-length: (\d+)/i.exec(head?.[1] ?? '')?.[1] ?? 0);
      if (head && received.length >= head[0].length + length) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(bytes);
  });
}

/** The status, headers and (parsed) body of the first answer in `text`. */
function firstAnswer(text: string) {
  const m = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(text);
  assert.ok(m, `an answer: ${JSON.stringify(text.slice(0, 200))}`);
  const headers = Object.fromEntries(
    m[2]!.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  const length = Number(headers['content-length'] ?? 0);
  const body = text.slice(m[0].length, m[0].length + length);
  return { status: Number(m[1]), headers, body, rest: text.slice(m[0].length + length) };
}

function assertEnvelope(answer: { status: number; headers: Record<string, string>; body: string }, status: number, type: string) {
  assert.equal(answer.status, status, answer.body);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  const parsed = JSON.parse(answer.body) as { error: { type: string; message: string } };
  assert.deepEqual(Object.keys(parsed), ['error']);
  assert.deepEqual(Object.keys(parsed.error).sort(), ['message', 'type']);
  assert.equal(parsed.error.type, type);
  return parsed.error.message;
}

/**
 * A request with a body of `bodyLength` bytes, all but the last one sent; once its whole answer is in, the
 * last byte and `next` go out in one write, so that the server reads them as one packet (as the fuzz's
 * keep-alive client did now and then). Returns what the server wrote after the first answer, until it closed.
 */
function afterBodyTail(url: string, head: string, bodyLength: number, next: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    let firstEnd = -1;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close; got ${JSON.stringify(received.slice(0, 300))}`));
    }, 10_000);
    socket.on('data', (d) => {
      received += d.toString('latin1');
      if (firstEnd >= 0) return;
      const answer = /^HTTP\/1\.1 \d{3} [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(received);
      const length = Number(/content-length: (\d+)/i.exec(answer?.[1] ?? '')?.[1] ?? 0);
      if (answer && received.length >= answer[0].length + length) {
        firstEnd = answer[0].length + length;
        socket.write(`z${next}`);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received.slice(Math.max(firstEnd, 0)));
    });
    socket.write(`${head}Content-Length: ${bodyLength}\r\n\r\n${'z'.repeat(bodyLength - 1)}`);
  });
}

describe('found by the fuzz', () => {
  let server: TestServer;
  let id: string;
  const rawRequest = (lines: string[], body = '') => `${lines.join('\r\n')}\r\n\r\n${body}`;
  before(async () => {
    server = await startTestServer({ maxBodyBytes: 1024 * 1024 });
    id = await createJob(server);
    assert.equal((await append(server, id, 'hello\n')).status, 200);
  });
  after(() => server.stop());

  test('a JSON body nested deeper than the stack is 400, not 500', async () => {
    const body = `{"meta":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`;
    const text = await exchange(
      server.url,
      rawRequest(['POST /v2/actor-builds HTTP/1.1', 'Host: x', `Authorization: Bearer ${server.token}`, 'Content-Type: application/json', `Content-Length: ${body.length}`, 'Connection: close'], body),
    );
    assert.match(assertEnvelope(firstAnswer(text), 400, 'invalid-input'), /"meta"/);
  });

  test('a malformed %-escape in the path and an over-long id get the envelope, without the URL quoted back', async () => {
    for (const [path, status, type] of [
      ['/v2/logs/%ff', 400, 'invalid-input'],
      [`/v2/actors/${encodeURIComponent('<b>')}%E0%A4%A`, 400, 'invalid-input'],
      [`/v2/logs/${'A'.repeat(201)}`, 404, 'record-not-found'],
      [`/v2/actor-builds/${'B'.repeat(5000)}/log`, 404, 'record-not-found'],
    ] as const) {
      const answer = firstAnswer(await exchange(server.url, rawRequest([`GET ${path} HTTP/1.1`, 'Host: x', 'Connection: close'])));
      const message = assertEnvelope(answer, status, type);
      assert.ok(!message.includes(path.slice(9, 40)), `no echo of the path: ${message}`);
    }
  });

  test('requests Node itself refuses get the envelope too; the answer to a HEAD has no body', async () => {
    for (const [bytes, status, type] of [
      ['GET\r\n\r\n', 400, 'invalid-input'],
      ['G@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'invalid-input'],
      ['GET / HTTP/1.1\r\nHost x\r\n\r\n', 400, 'invalid-input'],
      [`GET /v2/logs/${'a'} HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`, 431, 'request-too-large'],
    ] as const) {
      const answer = firstAnswer(await exchange(server.url, bytes));
      assertEnvelope(answer, status, type);
      assert.equal(answer.headers.connection, 'close');
    }
    const head = firstAnswer(await exchange(server.url, `HEAD /v2/logs/${id} HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`));
    assert.equal(head.status, 431);
    assert.equal(head.body, '');
    assert.equal(head.rest, '', 'nothing after the head');
  });

  test('the refusal of a HEAD has no body also when its bytes arrive behind the end of the previous body', async () => {
    // The fuzz's "HEAD after a 65,537-byte GET body": the client read the 431's body bytes as data after
    // `Connection: close` (HPE_CLOSED_CONNECTION), because the packet began with the GET body's last byte.
    const previous = `GET /v2/actor-builds/${id} HTTP/1.1\r\nHost: x\r\n`;
    for (const [headers, status] of [
      [`Host: x\r\nX-Huge: ${'h'.repeat(17_000)}`, 431],
      ['Host x', 400],
    ] as const) {
      const head = firstAnswer(await afterBodyTail(server.url, previous, 65_537, `HEAD /v2/logs/${id} HTTP/1.1\r\n${headers}\r\n\r\n`));
      assert.equal(head.status, status);
      assert.equal(head.headers.connection, 'close');
      assert.equal(head.body, '');
      assert.equal(head.rest, '', 'nothing after the head');
    }
    // A GET refused the same way still gets the envelope.
    const text = await afterBodyTail(server.url, previous, 10, `GET /v2/logs/${id} HTTP/1.1\r\nHost x\r\n\r\n`);
    assertEnvelope(firstAnswer(text), 400, 'invalid-input');
  });

  test('a large body that is not what its Content-Encoding says is answered 400 (the connection is not dropped first)', async () => {
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const body = 'not compressed at all '.repeat(3000);
      const text = await exchange(
        server.url,
        rawRequest(['POST /v2/logs/' + id + '/chunks HTTP/1.1', 'Host: x', `Authorization: Bearer ${server.token}`, 'Content-Type: text/plain', `Content-Encoding: ${encoding}`, `Content-Length: ${body.length}`], body),
      );
      assertEnvelope(firstAnswer(text), 400, 'invalid-input');
    }
    assert.equal(await (await fetch(`${server.url}/v2/logs/${id}`)).text(), 'hello\n');
  });

  test('an unsupported Content-Encoding is named in the message without markup', async () => {
    const text = await exchange(
      server.url,
      rawRequest([`POST /v2/logs/${id}/chunks HTTP/1.1`, 'Host: x', `Authorization: Bearer ${server.token}`, 'Content-Encoding: <script>alert(1)</script>', 'Content-Length: 2', 'Connection: close'], 'ab'),
    );
    const message = assertEnvelope(firstAnswer(text), 415, 'unsupported-content-encoding');
    assert.doesNotMatch(message, /[<>]/);
  });

  test('a Range with numbers past 15 digits is ignored (the whole log), not an offset of 1e+23', async () => {
    for (const range of [`bytes=${'9'.repeat(23)}-`, `bytes=0-${'9'.repeat(400)}`, `bytes=-${'9'.repeat(16)}`]) {
      const res = await fetch(`${server.url}/v2/logs/${id}`, { headers: { range } });
      assert.equal(res.status, 200, range);
      assert.equal(res.headers.get('x-log-offset'), '0');
      assert.equal(await res.text(), 'hello\n');
    }
  });
});
