// An identity server for the e2e tests, built on node oidc-provider: an RFC 7662
// introspection endpoint that answers RFC 9701 signed JWTs, a token endpoint for
// the client credentials grant and an RFC 7009 revocation endpoint.
//
// Started by the Go tests (fixtures.StartOIDCProvider), never by hand. Input comes
// from the environment:
//
//	OIDC_PORT            port to listen on, on 127.0.0.1
//	OIDC_GATEWAY_SECRET  secret of client "gateway" (the filter; introspects)
//	OIDC_APP_SECRET      secret of client "app" (gets and revokes tokens)
//
// It prints "listening <issuer>" on stdout once it accepts connections.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Provider } from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      // The API gateway: may introspect and wants RFC 9701 signed answers.
      client_id: 'gateway',
      client_secret: required('OIDC_GATEWAY_SECRET'),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      introspection_signed_response_alg: 'RS256',
    },
    {
      // The API client: gets opaque access tokens with the client credentials grant.
      client_id: 'app',
      client_secret: required('OIDC_APP_SECRET'),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'read write',
    },
  ],
  scopes: ['read', 'write'],
  ttl: { ClientCredentials: 600 },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Only the gateway learns about tokens.
      allowedPolicy: async (_ctx, client) => client.clientId === 'gateway',
    },
    jwtIntrospection: { enabled: true },
    revocation: {
      enabled: true,
      // A client revokes only its own tokens.
      allowedPolicy: async (_ctx, client, token) => client.clientId === token.clientId,
    },
    // No resource indicators: client credentials access tokens stay opaque.
    resourceIndicators: { enabled: false },
  },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
server.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
