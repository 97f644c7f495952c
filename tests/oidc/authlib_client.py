#!/usr/bin/python3
"""An independent OpenID Connect client against Agora, built on authlib (not on Agora's code).

It signs the customer in through the portal's form, runs the authorization code flow with PKCE
(S256), state and nonce, verifies the ID token against the instance's JWKS (EdDSA), calls
userinfo, refreshes the tokens (the refresh token rotates; presenting a spent one ends the whole
sign-in), and checks the refusals a provider owes its clients: a code used twice, a wrong
code_verifier, an unregistered redirect_uri. Given LAUNCH_TOKEN, it also verifies a mini-app launch
context as a partner's backend would: signature, audience, expiry, and a replayed jti refused.

    AGORA_URL=http://127.0.0.1:PORT CLIENT_ID=app_... CLIENT_SECRET=... \\
    REDIRECT_URI=http://127.0.0.1:9/callback EMAIL=... PASSWORD=... \\
    [SCOPE="openid profile email"] [LAUNCH_TOKEN=<JWS>] /usr/bin/python3 tests/oidc/authlib_client.py

Needs Debian's python3-authlib (1.2) and python3-requests. Prints
"oidc-authlib: all N checks passed", or "FAIL [check]: why" and exits 1.
"""

import html.parser
import os
import sys
import time
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError

TIMEOUT_SECONDS = 20
CLOCK_LEEWAY_SECONDS = 30
DEFAULT_SCOPE = "openid profile email"

checks = 0
current = "setup"


def fail(why):
    print(f"FAIL [{current}]: {why}", file=sys.stderr)
    sys.exit(1)


def check(name):
    """Marks the start of a check; `passed()` counts it."""
    global current
    current = name


def passed():
    global checks
    checks += 1
    print(f"ok   {current}")


def expect(condition, why):
    if not condition:
        fail(why)


def env(name, required=True):
    value = os.environ.get(name, "")
    if required and not value:
        fail(f"environment variable {name} is not set")
    return value


class Forms(html.parser.HTMLParser):
    """Collects each form's method, action and fields (inputs and named buttons)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({
                "id": attrs.get("id"),
                "method": (attrs.get("method") or "get").lower(),
                "action": attrs.get("action") or "",
                "hidden": {},
                "buttons": [],
            })
        elif self.forms and tag == "input" and (attrs.get("type") or "").lower() == "hidden":
            if attrs.get("name"):
                self.forms[-1]["hidden"][attrs["name"]] = attrs.get("value") or ""
        elif self.forms and attrs.get("name") and (
                tag == "button" or (tag == "input" and (attrs.get("type") or "").lower() == "submit")):
            self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value") or ""))


def forms_in(text):
    parser = Forms()
    parser.feed(text)
    return parser.forms


def code_from(response, redirect_uri, state):
    """The code of a 303 to redirect_uri, after checking its state."""
    expect(response.status_code in (302, 303),
           f"the authorization answered {response.status_code}, not a redirect: {response.text[:300]}")
    location = response.headers.get("location", "")
    expect(location.startswith(redirect_uri + "?"), f"redirected to {location!r}, not to {redirect_uri}")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    expect("error" not in query, f"the provider answered an error: {query}")
    expect(query.get("state") == [state], f"the state came back as {query.get('state')}, not {state!r}")
    expect(len(query.get("code", [])) == 1, f"no code in {location!r}")
    return query["code"][0]


def main():
    global current
    base = env("AGORA_URL").rstrip("/")
    client_id = env("CLIENT_ID")
    client_secret = env("CLIENT_SECRET")
    redirect_uri = env("REDIRECT_URI")
    email = env("EMAIL")
    password = env("PASSWORD")
    launch_token = env("LAUNCH_TOKEN", required=False)
    # The scopes to ask for; the app's manifest must declare each (openid is always allowed).
    scope = env("SCOPE", required=False) or DEFAULT_SCOPE
    scopes = scope.split()

    browser = requests.Session()

    check("discovery")
    response = requests.get(f"{base}/.well-known/openid-configuration", timeout=TIMEOUT_SECONDS)
    expect(response.status_code == 200, f"discovery answered {response.status_code}")
    discovery = response.json()
    issuer = discovery.get("issuer")
    expect(issuer == base, f"the issuer is {issuer!r}, not the portal's origin {base!r}")
    for field in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        expect(isinstance(discovery.get(field), str) and discovery[field].startswith(base),
               f"discovery's {field} is {discovery.get(field)!r}")
    algorithms = discovery.get("id_token_signing_alg_values_supported", ["EdDSA"])
    expect("EdDSA" in algorithms, f"ID tokens are not signed with EdDSA: {algorithms}")
    passed()

    check("jwks")
    response = requests.get(discovery["jwks_uri"], timeout=TIMEOUT_SECONDS)
    expect(response.status_code == 200, f"the JWKS answered {response.status_code}")
    jwks_document = response.json()
    keys = jwks_document.get("keys", [])
    expect(keys and all(key.get("kty") == "OKP" and key.get("crv") == "Ed25519" for key in keys),
           f"the JWKS holds no Ed25519 keys only: {keys}")
    expect(all("d" not in key for key in keys), "the JWKS publishes a private key")
    jwks = JsonWebKey.import_key_set(jwks_document)
    passed()

    check("signin")
    page = browser.get(f"{base}/signin", timeout=TIMEOUT_SECONDS)
    expect(page.status_code == 200, f"/signin answered {page.status_code}")
    expect(browser.cookies.get("agora_csrf"), "/signin set no agora_csrf cookie")
    signin = next((form for form in forms_in(page.text) if form["id"] == "signin"), None)
    expect(signin and signin["hidden"].get("csrf_token"), "/signin has no form with a csrf_token")
    response = browser.post(f"{base}/signin", allow_redirects=False, timeout=TIMEOUT_SECONDS, data={
        "email": email, "password": password, "csrf_token": signin["hidden"]["csrf_token"],
    })
    expect(response.status_code == 303, f"signing in answered {response.status_code}: {response.text[:300]}")
    expect(browser.cookies.get("agora_session"), "signing in set no agora_session cookie")
    passed()

    client = OAuth2Session(
        client_id, client_secret, scope=scope, redirect_uri=redirect_uri,
        code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",
    )

    def authorize(code_verifier):
        """Runs the authorization request as the signed-in browser; returns (code, nonce)."""
        state = generate_token(24)
        nonce = generate_token(24)
        url, _ = client.create_authorization_url(
            discovery["authorization_endpoint"], state=state, code_verifier=code_verifier, nonce=nonce)
        response = browser.get(url, allow_redirects=False, timeout=TIMEOUT_SECONDS)
        if response.status_code == 200:
            consent = next((form for form in forms_in(response.text)
                            if form["method"] == "post" and ("decision", "allow") in form["buttons"]), None)
            expect(consent, f"the authorization page has no consent form with decision=allow: {response.text[:300]}")
            action = urllib.parse.urljoin(url, consent["action"] or discovery["authorization_endpoint"])
            response = browser.post(action, allow_redirects=False, timeout=TIMEOUT_SECONDS,
                                    data={**consent["hidden"], "decision": "allow"})
        return code_from(response, redirect_uri, state), nonce

    def exchange_fails(code, code_verifier, why):
        try:
            client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code",
                               code=code, code_verifier=code_verifier)
        except OAuthError as error:
            expect(error.error == "invalid_grant", f"{why} was refused with {error.error!r}, not invalid_grant")
            return
        fail(f"{why} was exchanged for a token")

    check("authorize")
    code_verifier = generate_token(48)
    code, nonce = authorize(code_verifier)
    passed()

    check("token")
    token = client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code",
                               code=code, code_verifier=code_verifier)
    expect(str(token.get("token_type", "")).lower() == "bearer", f"the token type is {token.get('token_type')!r}")
    expect(token.get("access_token") and token.get("id_token"), f"the token response lacks a token: {list(token)}")
    passed()

    check("id-token")
    try:
        claims = jwt.decode(token["id_token"], jwks, claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "sub": {"essential": True},
        })
        claims.validate(now=int(time.time()), leeway=CLOCK_LEEWAY_SECONDS)
    except (JoseError, ValueError) as error:
        # authlib picks the JWKS key by the header's kid, and says ValueError when none matches.
        fail(f"the ID token does not verify: {error!r}")
    expect(claims.header.get("alg") == "EdDSA", f"the ID token is signed with {claims.header.get('alg')!r}")
    expect(claims.get("nonce") == nonce, f"the ID token's nonce is {claims.get('nonce')!r}, not {nonce!r}")
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    expect(len(audience) == 1 or claims.get("azp") == client_id, f"the ID token's audience is {audience}")
    expect(claims["exp"] > time.time() - CLOCK_LEEWAY_SECONDS, "the ID token has expired")
    passed()

    check("userinfo")
    response = requests.get(discovery["userinfo_endpoint"], timeout=TIMEOUT_SECONDS,
                            headers={"authorization": f"Bearer {token['access_token']}"})
    expect(response.status_code == 200, f"userinfo answered {response.status_code}: {response.text[:300]}")
    userinfo = response.json()
    expect(userinfo.get("sub") == claims["sub"], f"userinfo's sub {userinfo.get('sub')!r} is not the ID token's")
    if "profile" in scopes:
        expect(isinstance(userinfo.get("name"), str), f"userinfo carries no name under scope profile: {userinfo}")
    if "email" in scopes:
        expect(userinfo.get("email") == email, f"userinfo's email is {userinfo.get('email')!r}, not {email!r}")
    response = requests.get(discovery["userinfo_endpoint"], timeout=TIMEOUT_SECONDS,
                            headers={"authorization": "Bearer not-a-token"})
    expect(response.status_code == 401, f"userinfo with a bogus token answered {response.status_code}")
    passed()

    check("refresh")
    expect(token.get("refresh_token"), f"the token response carries no refresh_token: {list(token)}")
    expect("refresh_token" in discovery.get("grant_types_supported", []),
           f"discovery does not list refresh_token: {discovery.get('grant_types_supported')}")
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(discovery["token_endpoint"], refresh_token=first_refresh)
    expect(refreshed.get("access_token") and refreshed["access_token"] != token["access_token"],
           "refreshing gave no new access token")
    expect(refreshed.get("refresh_token") and refreshed["refresh_token"] != first_refresh,
           "refreshing did not rotate the refresh token")
    response = requests.get(discovery["userinfo_endpoint"], timeout=TIMEOUT_SECONDS,
                            headers={"authorization": f"Bearer {refreshed['access_token']}"})
    expect(response.status_code == 200 and response.json().get("sub") == claims["sub"],
           f"userinfo with the refreshed token answered {response.status_code}: {response.text[:300]}")
    response = requests.get(discovery["userinfo_endpoint"], timeout=TIMEOUT_SECONDS,
                            headers={"authorization": f"Bearer {refreshed['refresh_token']}"})
    expect(response.status_code == 401, f"a refresh token used as an access token answered {response.status_code}")
    passed()

    check("refresh-reuse")
    # The first refresh token again: it was copied, so the whole sign-in ends.
    try:
        client.refresh_token(discovery["token_endpoint"], refresh_token=first_refresh)
        fail("a spent refresh token was exchanged again")
    except OAuthError as error:
        expect(error.error == "invalid_grant", f"a spent refresh token was refused with {error.error!r}")
    response = requests.get(discovery["userinfo_endpoint"], timeout=TIMEOUT_SECONDS,
                            headers={"authorization": f"Bearer {refreshed['access_token']}"})
    expect(response.status_code == 401,
           f"after a refresh token came back twice, its sign-in's access token still answers {response.status_code}")
    try:
        client.refresh_token(discovery["token_endpoint"], refresh_token=refreshed["refresh_token"])
        fail("the rotated refresh token still works after the reuse")
    except OAuthError as error:
        expect(error.error == "invalid_grant", f"the rotated refresh token was refused with {error.error!r}")
    passed()

    check("code-reuse")
    exchange_fails(code, code_verifier, "the same code a second time")
    passed()

    check("wrong-verifier")
    second_verifier = generate_token(48)
    second_code, _ = authorize(second_verifier)
    exchange_fails(second_code, generate_token(48), "a code with the wrong code_verifier")
    passed()

    check("unregistered-redirect")
    url, _ = client.create_authorization_url(
        discovery["authorization_endpoint"], state=generate_token(24), code_verifier=generate_token(48),
        nonce=generate_token(24), redirect_uri="https://attacker.example/callback")
    response = browser.get(url, allow_redirects=False, timeout=TIMEOUT_SECONDS)
    expect(response.status_code == 400, f"an unregistered redirect_uri answered {response.status_code}, not 400")
    expect("location" not in response.headers, f"an unregistered redirect_uri redirected to {response.headers.get('location')}")
    passed()

    if launch_token:
        # What a partner's backend does with the launch context its mini-app sends it.
        seen_jti = {}

        def verify_launch(token_text):
            """The launch context's claims once its signature, issuer, audience and expiry check."""
            claims = jwt.decode(token_text, jwks, claims_options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client_id},
                "exp": {"essential": True},
                "jti": {"essential": True},
                "sub": {"essential": True},
            })
            claims.validate(now=int(time.time()), leeway=CLOCK_LEEWAY_SECONDS)
            return claims

        def accept_launch(token_text):
            """verify_launch, then refuses a jti seen before (until it expires)."""
            claims = verify_launch(token_text)
            now = time.time()
            for jti in [jti for jti, expiry in seen_jti.items() if expiry < now]:
                del seen_jti[jti]
            if claims["jti"] in seen_jti:
                raise ValueError(f"the launch context {claims['jti']} was used already")
            seen_jti[claims["jti"]] = claims["exp"]
            return claims

        check("launch-context")
        try:
            launch = accept_launch(launch_token)
        except (JoseError, ValueError) as error:
            fail(f"the launch context does not verify: {error!r}")
        expect(launch.header.get("alg") == "EdDSA", f"the launch context is signed with {launch.header.get('alg')!r}")
        expect(launch["exp"] - launch.get("iat", launch["exp"]) <= 600,
               f"the launch context lives {launch['exp'] - launch.get('iat', 0)} s")
        passed()

        check("launch-replay")
        try:
            accept_launch(launch_token)
            fail("the same launch context was accepted twice")
        except ValueError:
            pass
        passed()

        check("launch-tampered")
        head, payload, signature = launch_token.split(".")
        # A character inside the signature, so every bit it encodes counts.
        flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        try:
            verify_launch(f"{head}.{payload}.{flipped}")
            fail("a launch context with a broken signature verifies")
        except JoseError:
            pass
        passed()

        check("launch-expired")
        # The same, genuine context presented after its expiry: the backend refuses it.
        claims = jwt.decode(launch_token, jwks)
        try:
            claims.validate(now=int(claims["exp"]) + CLOCK_LEEWAY_SECONDS + 1, leeway=CLOCK_LEEWAY_SECONDS)
            fail("an expired launch context verifies")
        except JoseError:
            pass
        passed()

    print(f"oidc-authlib: all {checks} checks passed")


if __name__ == "__main__":
    try:
        main()
    except requests.RequestException as error:
        fail(f"HTTP failed: {error}")
