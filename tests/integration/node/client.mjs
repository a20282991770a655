// Node's openid-client (v6), unchanged, fetching a client_credentials token from a served embedauth.
//
//   node client.mjs ISSUER CLIENT_ID basic|post SECRET [SCOPE]
//   node client.mjs ISSUER CLIENT_ID private_key_jwt KEY.pem [SCOPE]   (PKCS#8 PEM: RSA, P-256 or Ed25519)
//
// It runs OpenID discovery on ISSUER, then clientCredentialsGrant, and prints the token response as
// one JSON object on stdout. On failure it prints what went wrong as JSON on stderr and exits 1.
// The server is plain HTTP on loopback, so the configuration allows insecure requests (the one
// option openid-client needs for that; nothing else is changed).
import { createPrivateKey, webcrypto } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as client from 'openid-client'

const IMPORT_ALGORITHMS = {
  rsa: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, // RS256
  ec: { name: 'ECDSA', namedCurve: 'P-256' }, // ES256
  ed25519: { name: 'Ed25519' }, // EdDSA
}

async function privateKey(path) {
  const keyObject = createPrivateKey(readFileSync(path))
  const algorithm = IMPORT_ALGORITHMS[keyObject.asymmetricKeyType]
  if (algorithm === undefined) {
    throw new Error(`unsupported key type ${keyObject.asymmetricKeyType}`)
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' })
  return webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign'])
}

async function clientAuth(mode, credential) {
  switch (mode) {
    case 'basic':
      return client.ClientSecretBasic(credential)
    case 'post':
      return client.ClientSecretPost(credential)
    case 'private_key_jwt':
      return client.PrivateKeyJwt(await privateKey(credential))
    default:
      throw new Error(`unknown mode ${mode}: basic, post or private_key_jwt`)
  }
}

async function main(argv) {
  const [issuer, clientId, mode, credential, scope] = argv
  if (credential === undefined) {
    throw new Error('usage: client.mjs ISSUER CLIENT_ID basic|post|private_key_jwt SECRET|KEY.pem [SCOPE]')
  }
  const config = await client.discovery(new URL(issuer), clientId, undefined, await clientAuth(mode, credential), {
    execute: [client.allowInsecureRequests],
  })
  const parameters = scope === undefined ? {} : { scope }
  const response = await client.clientCredentialsGrant(config, parameters)
  const { access_token, token_type, expires_in, scope: granted } = response
  const metadata = config.serverMetadata()
  process.stdout.write(
    JSON.stringify({ access_token, token_type, expires_in, scope: granted, issuer: metadata.issuer }) + '\n',
  )
}

try {
  await main(process.argv.slice(2))
} catch (error) {
  const cause = error?.cause
  process.stderr.write(
    JSON.stringify({
      name: error?.name,
      code: error?.code,
      message: error?.message,
      error: error?.error,
      error_description: error?.error_description,
      status: error?.status,
      cause: cause instanceof Error ? `${cause.name}: ${cause.message}` : cause,
    }) + '\n',
  )
  process.exitCode = 1
}
