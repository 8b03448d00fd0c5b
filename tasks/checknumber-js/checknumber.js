#!/usr/bin/env node
// checknumber in JavaScript: phone-number checks for Slipway with libphonenumber-js ("max"
// metadata: validity and number type), offline. The same task and the same verdicts as the
// Python tool in tasks/checknumber/, so either can be a TaskProvider for `checknumber`.
//
//   node checknumber.js serve [--host 0.0.0.0] [--port 8080]   HTTP CloudEvent service
//   node checknumber.js job [--termination-log PATH]           Job container
//
// Without a sub-command it is `job` when SLIPWAY_EVENT is set, else `serve`.
//
// libphonenumber-js has no carrier, geocoding (region inside a country) or time-zone data:
// `carrier` and `region` are always null, `time_zones` always [], and the output says so in
// `not_available`.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const {
  parsePhoneNumberWithError,
  ParseError,
  isSupportedCountry,
  validatePhoneNumberLength,
} = require('libphonenumber-js/max');

const TASK = 'checknumber';
const SOURCE = 'slipway.dev/tasks/checknumber-js';
const TOOL = `libphonenumber-js ${require('libphonenumber-js/package.json').version}`;
const TERMINATION_LOG = '/dev/termination-log';
const MAX_TERMINATION_MESSAGE = 4096; // bytes the kubelet keeps
const MAX_INPUT = 64; // characters taken as a phone number
const MAX_BODY = 1024 * 1024; // largest request body read
const EXAMPLE = '+44 20 7946 0958';
const NOT_AVAILABLE = ['carrier', 'region', 'time_zones'];
const NOTE = 'libphonenumber-js has no carrier, geocoding or time-zone data';
const THE_NAMES = new Set(['Netherlands', 'Philippines', 'Bahamas', 'Gambia', 'Maldives']);
const TYPE_WORDS = {
  fixed_line: 'fixed-line',
  fixed_line_or_mobile: 'fixed-line or mobile',
  toll_free: 'toll-free',
  premium_rate: 'premium-rate',
  shared_cost: 'shared-cost',
  voip: 'VoIP',
  personal_number: 'personal',
  uan: 'universal access (UAN)',
};
const LENGTH_REASONS = {
  INVALID_COUNTRY: 'unknown_country_code',
  TOO_SHORT: 'too_short',
  TOO_LONG: 'too_long',
  INVALID_LENGTH: 'invalid_length',
  NOT_A_NUMBER: 'not_a_number',
};
const METADATA = require('libphonenumber-js/metadata.max.json');
const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });

// ----------------------------------------------------------------------------- the check
function fail(reason, message, output = {}) {
  return {
    result: 'fail',
    message,
    [TASK]: { valid: false, possible: false, reason, ...output, tool: TOOL },
  };
}

function countryName(country) {
  if (!country) return '';
  try {
    const name = regionNames.of(country);
    return name && name !== country ? name : '';
  } catch {
    return '';
  }
}

function where(country, name) {
  if (!name) return country || 'an unknown country';
  const plural = /(Islands|Republic|Emirates)$/.test(name) || THE_NAMES.has(name);
  return name.startsWith('United ') || plural ? `the ${name}` : name;
}

function defaultRegion(properties) {
  if (!properties || typeof properties !== 'object' || Array.isArray(properties)) return {};
  const country = properties.country;
  if (country === undefined || country === null || country === '') return {};
  if (typeof country === 'string' && isSupportedCountry(country.toUpperCase())) {
    return { region: country.toUpperCase() };
  }
  return {
    problem:
      'the task property country must be a two-letter region code such as GB, ' +
      `not ${JSON.stringify(country)}`,
  };
}

function parseFailure(shown, text, region, code) {
  if (code === 'INVALID_COUNTRY') {
    if (text.startsWith('+') || text.startsWith('00')) {
      return fail(
        'unknown_country_code',
        `${shown} is not a valid phone number: ` +
          'it does not start with a country calling code in use',
        { number: text },
      );
    }
    return fail(
      'no_country_code',
      `${shown} has no country code: write it as +<country code> <number> (e.g. ${EXAMPLE}) ` +
        'or set the task property country (e.g. GB)',
      { number: text },
    );
  }
  if (code === 'TOO_SHORT') {
    const at = region ? ` for ${region}` : '';
    return fail('too_short', `${shown} is not a valid phone number: too short${at}`, {
      number: text,
    });
  }
  if (code === 'TOO_LONG') {
    return fail('too_long', `${shown} is not a valid phone number: too long`, { number: text });
  }
  return fail('not_a_number', `${shown} is not a phone number`, { number: text });
}

/** The verdict on `number` (data.number) with the task's `properties` (data.checknumber). */
function check(number, properties) {
  const { region, problem } = defaultRegion(properties);
  if (problem) return fail('bad_country_property', problem);
  if (number === undefined || number === null || (typeof number === 'string' && !number.trim())) {
    return fail('missing', `no phone number was given: set data.number, e.g. ${EXAMPLE}`);
  }
  if (typeof number !== 'string') {
    const example = JSON.stringify(EXAMPLE);
    if (typeof number === 'number') {
      return fail(
        'not_text',
        `data.number must be text such as ${example}, not a number: ` +
          'as a number it loses its leading + and zeros',
      );
    }
    const kinds = { boolean: 'true/false', object: Array.isArray(number) ? 'a list' : 'an object' };
    const kind = kinds[typeof number] || 'that';
    return fail('not_text', `data.number must be text such as ${example}, not ${kind}`);
  }
  const text = number.trim();
  if (text.length > MAX_INPUT) {
    return fail('too_long', `data.number is ${text.length} characters long: not a phone number`);
  }
  const shown = JSON.stringify(text);
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(text, region ? { defaultCountry: region } : undefined);
  } catch (error) {
    if (error instanceof ParseError) return parseFailure(shown, text, region, error.message);
    throw error;
  }
  const valid = parsed.isValid();
  const possible = parsed.isPossible();
  const country = parsed.country || (valid ? null : guessCountry(parsed)) || null;
  const name = countryName(country);
  const place = where(country, name);
  const kind = valid ? (parsed.getType() || 'unknown').toLowerCase() : 'unknown';
  const output = {
    number: text,
    valid,
    possible,
    type: kind,
    country,
    country_name: name || null,
    region: null,
    calling_code: Number(parsed.countryCallingCode),
    carrier: null,
    time_zones: [],
    e164: parsed.number,
    international: parsed.formatInternational(),
    national: parsed.formatNational(),
    tool: TOOL,
    not_available: NOT_AVAILABLE,
    note: NOTE,
  };
  if (valid) {
    const words = TYPE_WORDS[kind] || kind.replace(/_/g, ' ');
    const article = /^[aeiou]/i.test(words) ? 'an' : 'a';
    const description = kind === 'unknown' ? '' : ` ${words}`;
    return {
      result: 'pass',
      message: `${output.international} is ${article} valid${description} number in ${place}`,
      [TASK]: output,
    };
  }
  if (possible) {
    output.reason = 'not_in_use';
    return {
      result: 'warning',
      message:
        `${output.international} has the length of a number in ${place} but is in no range ` +
        'known to be in use: it may be unassigned, reserved (e.g. for films) or too new for ' +
        "this tool's data, so it cannot be verified",
      [TASK]: output,
    };
  }
  const options = region ? { defaultCountry: region } : undefined;
  const lengthReason = validatePhoneNumberLength(text, options);
  output.reason = LENGTH_REASONS[lengthReason] || 'invalid';
  const why =
    {
      too_short: `too short for ${place}`,
      too_long: `too long for ${place}`,
      unknown_country_code: `+${output.calling_code} is not a country calling code in use`,
    }[output.reason] || `not a length numbers in ${place} have`;
  const message = `${shown} is not a valid phone number: ${why}`;
  return { result: 'fail', message, [TASK]: output };
}

/** The main country of a calling code (listed first in the metadata), for numbers that fit
 * no country's ranges: what phonenumbers' region_code_for_country_code gives. */
function guessCountry(parsed) {
  const countries = METADATA.country_calling_codes[parsed.countryCallingCode] || [];
  return countries[0] || null;
}

/** The `.finished` data for a `.triggered` event; never throws. */
function verdictFor(event) {
  try {
    const data = event ? event.data : undefined;
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
      return fail('no_data', 'the event carries no data object, so no data.number');
    }
    return check(data.number, data[TASK]);
  } catch (error) {
    console.error(error);
    return fail('internal_error', `checknumber could not check the number: ${error.message}`);
  }
}

// ----------------------------------------------------------------------------- CloudEvents
class BadRequest extends Error {}

function percentDecode(value) {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The event in an HTTP request and its mode ('structured' or 'binary'). */
function readEvent(headers, body) {
  const media = String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  let document = null;
  if (body.trim()) {
    try {
      document = JSON.parse(body);
    } catch (error) {
      throw new BadRequest(`the body is not JSON: ${error.message}`);
    }
  }
  let event;
  let mode;
  if (media === 'application/cloudevents+json') {
    if (!document || typeof document !== 'object' || Array.isArray(document)) {
      throw new BadRequest('a structured CloudEvent must be a JSON object');
    }
    event = document;
    mode = 'structured';
  } else if (headers['ce-type']) {
    event = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith('ce-')) event[name.slice(3)] = percentDecode(value);
    }
    event.data = document;
    mode = 'binary';
  } else {
    throw new BadRequest(
      'not a CloudEvent: send Content-Type application/cloudevents+json, or ce- headers',
    );
  }
  if (typeof event.type !== 'string' || !event.type.endsWith('.triggered') || !event.id) {
    throw new BadRequest('expected a <task>.triggered CloudEvent with an id');
  }
  return { event, mode };
}

/** The `<task>.finished` CloudEvent answering `triggered` (its type keeps any prefix). */
function finishedEvent(triggered, verdict) {
  const event = {
    specversion: '1.0',
    id: crypto.randomUUID(),
    source: SOURCE,
    type: `${triggered.type.slice(0, -'.triggered'.length)}.finished`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    triggeredid: String(triggered.id),
    data: verdict,
  };
  if (triggered.slipwaycontext) event.slipwaycontext = String(triggered.slipwaycontext);
  return event;
}

function toHttp(event, mode) {
  if (mode === 'structured') {
    const headers = { 'Content-Type': 'application/cloudevents+json' };
    return { headers, body: JSON.stringify(event) };
  }
  const headers = { 'Content-Type': 'application/json' };
  for (const [name, value] of Object.entries(event)) {
    if (name !== 'data' && name !== 'datacontenttype') {
      // Printable ASCII but space, '"' and '%' as is; the rest percent-encoded (HTTP binding).
      headers[`ce-${name}`] = String(value).replace(/[^\x21\x23-\x24\x26-\x7e]/gu, (c) =>
        encodeURIComponent(c),
      );
    }
  }
  return { headers, body: JSON.stringify(event.data) };
}

function send(response, status, headers, body) {
  response.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function error(response, status, message) {
  send(
    response,
    status,
    { 'Content-Type': 'application/json' },
    JSON.stringify({ error: http.STATUS_CODES[status], message }),
  );
}

function handle(request, response) {
  if (request.method === 'GET') {
    if (['/healthz', '/readyz'].includes(request.url.replace(/\/$/, ''))) {
      send(response, 200, { 'Content-Type': 'application/json' }, '{"status": "ok"}');
    } else {
      error(response, 404, 'POST CloudEvents to /; GET /healthz');
    }
    return;
  }
  if (request.method !== 'POST') {
    error(response, 405, 'POST CloudEvents to /');
    return;
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  request.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) tooLarge = true;
    else chunks.push(chunk);
  });
  request.on('end', () => {
    if (tooLarge) {
      error(response, 413, `at most ${MAX_BODY} bytes`);
      return;
    }
    let read;
    try {
      read = readEvent(request.headers, Buffer.concat(chunks).toString('utf8'));
    } catch (caught) {
      if (caught instanceof BadRequest) {
        error(response, 400, caught.message);
        return;
      }
      throw caught;
    }
    const answer = finishedEvent(read.event, verdictFor(read.event));
    const { headers, body } = toHttp(answer, read.mode);
    send(response, 200, headers, body);
    console.log(`${read.event.id}: ${answer.data.result}: ${answer.data.message}`);
  });
}

function serve(host, port) {
  const server = http.createServer(handle);
  server.listen(port, host, () => {
    const address = server.address();
    console.log(`checknumber-js listening on http://${address.address}:${address.port}/`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

// ----------------------------------------------------------------------------- Job
function writeTerminationMessage(path, verdict) {
  let text = JSON.stringify(verdict);
  if (Buffer.byteLength(text) > MAX_TERMINATION_MESSAGE) {
    text = JSON.stringify({ result: verdict.result, message: verdict.message });
  }
  fs.writeFileSync(path, text, 'utf8');
}

/** The Job entry point: 0 whenever a verdict was written, 2 when the event is unusable. */
function runJob(env, terminationLog) {
  const path = terminationLog || env.SLIPWAY_TERMINATION_LOG || TERMINATION_LOG;
  const raw = env.SLIPWAY_EVENT;
  let problem = null;
  let event = null;
  if (!raw) {
    problem = 'SLIPWAY_EVENT is not set: run me as a Slipway Job provider';
  } else {
    try {
      event = JSON.parse(raw);
    } catch (caught) {
      problem = `SLIPWAY_EVENT is not JSON: ${caught.message}`;
    }
    if (!problem && (!event || typeof event !== 'object' || Array.isArray(event))) {
      problem = 'SLIPWAY_EVENT is not a CloudEvent (a JSON object)';
    }
  }
  if (problem) {
    console.error(`checknumber-js: ${problem}`);
    writeTerminationMessage(path, { result: 'fail', message: problem });
    return 2;
  }
  const verdict = verdictFor(event);
  writeTerminationMessage(path, verdict);
  console.log(`checknumber-js: ${verdict.result}: ${verdict.message}`);
  return 0;
}

function option(args, name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
}

function main(argv, env) {
  const fallback = env.SLIPWAY_EVENT ? 'job' : 'serve';
  const command = ['serve', 'job'].includes(argv[0]) ? argv[0] : fallback;
  if (command === 'serve') {
    const host = option(argv, '--host', env.HOST || '0.0.0.0');
    const port = Number(option(argv, '--port', env.PORT || '8080'));
    serve(host, port);
    return null;
  }
  return runJob(env, option(argv, '--termination-log', null));
}

module.exports = { check, verdictFor, readEvent, finishedEvent, runJob, serve };

if (require.main === module) {
  const code = main(process.argv.slice(2), process.env);
  if (code !== null) process.exitCode = code;
}
