// A real OpenID provider for dishpatch's OAuth tests, listening on 127.0.0.1 only.
// Configured by the environment; prints "listening <issuer>" once it accepts connections.
//   PORT            port to listen on
//   CLIENT_ID       the confidential client dishpatch logs in with
//   CLIENT_SECRET
//   REDIRECT_URIS   comma-separated redirect URIs of that client
//   ID_TOKEN_TTL    seconds an ID token lives (default 3600)
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: process.env.REDIRECT_URIS.split(','),
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, email_verified: true, name: `User ${id}` };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['dishpatch-test-provider-cookie-key'] },
  ttl: { IdToken: Number(process.env.ID_TOKEN_TTL || 3600) },
});

// Keep the test output quiet; errors still reach stderr.
provider.on('server_error', (ctx, error) => console.error('server_error', error));

provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
