// A real OpenID provider for the tests: npm `oidc-provider` (a certified OpenID Connect
// implementation) with one confidential client registered for Gatehouse's callback, test
// accounts, and its development interactions (any login name, any password; a consent screen;
// "[ Cancel ]" answers access_denied). It listens on 127.0.0.1 only.
//
// Configured by one JSON environment variable, OIDC_TEST_CONFIG:
//   {"port", "module", "client_id", "client_secret", "redirect_uris": [...],
//    "accounts": {"<login>": {"email", "email_verified", "name"}}}
// `module` is the path of oidc-provider's lib/index.js in the npm cache.
import { pathToFileURL } from 'node:url';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG);
const { default: Provider } = await import(pathToFileURL(config.module).href);
const issuer = `http://127.0.0.1:${config.port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(ctx, id) {
    const account = config.accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['gatehouse-tests-only-cookie-key'] },
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
