// An independent UMA 2.0 requesting client, written with oauth4webapi alone (none of the project's
// kits), that tests/interop/test_oauth4webapi.py runs against a live agent.
//
// What it does, each step through oauth4webapi's own functions where it has one:
//   discovery   UMA 2.0 Grant §2 metadata at {issuer}/.well-known/uma2-configuration, checked by
//               processDiscoveryResponse; RFC 8414 metadata by discoveryRequest for comparison
//   register    RFC 7591 dynamic registration: private_key_jwt with its own ES256 key,
//               dpop_bound_access_tokens, the UMA grant type
//   grant       UMA 2.0 Grant §3.3.1 at the token endpoint (genericTokenEndpointRequest), a pushed
//               ID token as claim_token, DPoP-bound (RFC 9449), retrying once on use_dpop_nonce (§8)
//   present     the RPT at a resource server: protectedResourceRequest builds the DPoP request, and
//               validateJwtAccessToken checks it as an RS would (RFC 9068: signature from jwks_uri,
//               iss, aud, typ at+jwt; RFC 9449 §7: proof with ath, cnf.jkt)
//   introspect  introspectionRequest with this client's own credentials (the agent answers only a
//               PAT: UMA FedAuthz §1.3, §5)
//   wait        request_submitted (UMA 2.0 Grant §3.3.6) read from ResponseBodyError, the interval
//               honoured, the new ticket redeemed once the owner approved
//
// The conversation with the test: one JSON object per line.
//   argv[2]  {"issuer"}
//   stdout   {"step": "registered", "client_id", "dpop_jwk", "dpop_jkt", "discovery"}
//   stdin    {"id_token", "ticket", "ticket_unshared", "rs_client_id", "resource_url"}
//   stdout   {"step": "submitted", "submitted": {...the error as oauth4webapi surfaced it}}
//   stdin    {"step": "approved"}
//   stdout   {"step": "done", ...}
// Any failure: {"step": "error", ...} and exit code 1.

import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

const UMA_GRANT = 'urn:ietf:params:oauth:grant-type:uma-ticket'
const ID_TOKEN = 'http://openid.net/specs/openid-connect-core-1_0.html#IDToken'
// The agent under test listens on http://127.0.0.1; oauth4webapi wants https unless told otherwise.
const insecure = { [oauth.allowInsecureRequests]: true }

const stdin = createInterface({ input: process.stdin })
const lines = stdin[Symbol.asyncIterator]()

async function receive () {
  const { value, done } = await lines.next()
  if (done) throw new Error('the test closed stdin')
  return JSON.parse(value)
}

function send (message) {
  process.stdout.write(JSON.stringify(message) + '\n')
}

/** An error as oauth4webapi surfaced it, in plain JSON. */
function describe (err) {
  const out = { name: err?.name, code: err?.code, message: err?.message }
  if (err instanceof oauth.ResponseBodyError) {
    Object.assign(out, { status: err.status, error: err.error, error_description: err.error_description, body: err.cause })
  } else if (err instanceof oauth.WWWAuthenticateChallengeError) {
    Object.assign(out, { status: err.status, challenges: err.cause })
  }
  return out
}

async function discover (issuer) {
  // oauth4webapi's discoveryRequest knows openid-configuration and oauth-authorization-server only,
  // so the UMA document is fetched here; processDiscoveryResponse checks status, JSON and issuer.
  const url = new URL(issuer.replace(/\/$/, '') + '/.well-known/uma2-configuration')
  const response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual' })
  const as = await oauth.processDiscoveryResponse(new URL(issuer), response)
  const rfc8414 = await oauth.processDiscoveryResponse(
    new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', ...insecure }))
  return { as, rfc8414 }
}

async function publicJwk (key, extra) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', key)
  return { kty, crv, x, y, ...extra }
}

async function register (as, clientKeys) {
  const kid = oauth.generateRandomState().slice(0, 8)
  const jwk = await publicJwk(clientKeys.publicKey, { kid, alg: 'ES256', use: 'sig' })
  const response = await oauth.dynamicClientRegistrationRequest(as, {
    client_name: 'oauth4webapi interop client',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [jwk] },
    grant_types: [UMA_GRANT],
    dpop_bound_access_tokens: true
  }, insecure)
  const client = await oauth.processDynamicClientRegistrationResponse(response)
  return { client, auth: oauth.PrivateKeyJwt({ key: clientKeys.privateKey, kid }) }
}

/**
 * The UMA grant, retried once when the agent asks for a DPoP nonce: the DPoP handle keeps the
 * nonce from the refusal's DPoP-Nonce header and puts it in the next proof. Failures are thrown
 * with the count of nonce retries attached.
 */
async function umaGrant (as, client, auth, dpop, parameters) {
  let nonceRetries = 0
  for (;;) {
    const response = await oauth.genericTokenEndpointRequest(as, client, auth, UMA_GRANT, parameters,
      { DPoP: dpop, ...insecure })
    try {
      const token = await oauth.processGenericTokenEndpointResponse(as, client, response)
      return { token, nonceRetries }
    } catch (err) {
      if (oauth.isDPoPNonceError(err) && nonceRetries === 0) {
        nonceRetries += 1
        continue
      }
      err.nonceRetries = nonceRetries
      throw err
    }
  }
}

function summary ({ token, nonceRetries }) {
  return {
    token_type: token.token_type,
    access_token: token.access_token,
    expires_in: token.expires_in,
    has_pct: typeof token.pct === 'string',
    has_refresh_token: typeof token.refresh_token === 'string',
    nonce_retries: nonceRetries
  }
}

/** Present the RPT the way a resource request would carry it, and validate it as an RS would. */
async function presentAtResource (as, rpt, dpop, resourceUrl, rsClientId) {
  let request
  const capture = async (url, init) => {
    request = new Request(url, init)
    return new Response(null, { status: 204 })
  }
  await oauth.protectedResourceRequest(rpt, 'GET', new URL(resourceUrl), undefined, undefined,
    { DPoP: dpop, [oauth.customFetch]: capture })
  return {
    authorization_scheme: request.headers.get('authorization').split(' ')[0],
    claims: await oauth.validateJwtAccessToken(as, request, rsClientId, { requireDPoP: true, ...insecure })
  }
}

async function introspectAsClient (as, client, auth, token) {
  const response = await oauth.introspectionRequest(as, client, auth, token, insecure)
  try {
    return { refused: false, answer: await oauth.processIntrospectionResponse(as, client, response) }
  } catch (err) {
    return { refused: true, ...describe(err) }
  }
}

async function main () {
  const { issuer } = JSON.parse(process.argv[2])
  const { as, rfc8414 } = await discover(issuer)
  const clientKeys = await oauth.generateKeyPair('ES256')
  const dpopKeys = await oauth.generateKeyPair('ES256')
  const { client, auth } = await register(as, clientKeys)
  const dpop = oauth.DPoP(client, dpopKeys)
  send({
    step: 'registered',
    client_id: client.client_id,
    registered: { dpop_bound_access_tokens: client.dpop_bound_access_tokens, grant_types: client.grant_types },
    dpop_jwk: await publicJwk(dpopKeys.publicKey),
    dpop_jkt: await dpop.calculateThumbprint(),
    discovery: {
      issuer: as.issuer,
      token_endpoint: as.token_endpoint,
      introspection_endpoint: as.introspection_endpoint,
      registration_endpoint: as.registration_endpoint,
      rfc8414_same_endpoints: ['token_endpoint', 'introspection_endpoint', 'registration_endpoint', 'jwks_uri']
        .every((name) => rfc8414[name] === as[name])
    }
  })

  const scene = await receive()
  const claims = { claim_token: scene.id_token, claim_token_format: ID_TOKEN }

  const granted = await umaGrant(as, client, auth, dpop, { ticket: scene.ticket, ...claims })
  const atResource = await presentAtResource(as, granted.token.access_token, dpop, scene.resource_url,
    scene.rs_client_id)
  const clientIntrospection = await introspectAsClient(as, client, auth, granted.token.access_token)

  let submitted
  try {
    const unexpected = await umaGrant(as, client, auth, dpop, { ticket: scene.ticket_unshared, ...claims })
    throw new Error(`expected request_submitted, got a ${unexpected.token.token_type} token`)
  } catch (err) {
    if (!(err instanceof oauth.ResponseBodyError)) throw err
    submitted = { ...describe(err), nonce_retries: err.nonceRetries }
  }
  send({ step: 'submitted', submitted })

  const go = await receive()
  if (go.step !== 'approved') throw new Error(`unexpected message ${JSON.stringify(go)}`)
  await sleep(1000 * (submitted.body.interval ?? 5)) // §3.3.6: no sooner than the interval
  const approved = await umaGrant(as, client, auth, dpop, { ticket: submitted.body.ticket, ...claims })

  send({
    step: 'done',
    granted: summary(granted),
    at_resource: atResource,
    client_introspection: clientIntrospection,
    submitted,
    approved: summary(approved)
  })
}

main().catch((err) => {
  send({ step: 'error', ...describe(err), nonce_retries: err?.nonceRetries, stack: err?.stack })
  process.exitCode = 1
}).finally(() => stdin.close())
