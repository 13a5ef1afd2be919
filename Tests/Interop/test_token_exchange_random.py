"""Randomized token exchange (seeded): a few hundred requests with random subjects, random subsets
and parameter narrowings (and widenings) of scopes, random audiences and resources. On every
success the invariants of docs/token-exchange.md hold, checked with an independent Python model
of DESIGN.md's *covers* relation; every refusal is a 400 RFC error of the expected kind.

Seed: EXCHANGE_FUZZ_SEED (default 8693). Request count: EXCHANGE_FUZZ_REQUESTS (default 200).
The run stops early (but after at least 50 requests) when it has taken more than 150 s.
"""

from __future__ import annotations

import os
import random
import time
from types import SimpleNamespace

import pytest

from support import (CI_ISSUER, CRM_API, EXCHANGE_ERRORS, READ_WRITE, WorkloadIssuerSim, add_client_with_grants,
                     assert_oauth_error, canonical_scope, exchange, parse_scope, put_policy, scopes_cover,
                     unverified_claims, verify_access_token)

SEED = int(os.environ.get("EXCHANGE_FUZZ_SEED", "8693"))
REQUESTS = int(os.environ.get("EXCHANGE_FUZZ_REQUESTS", "200"))
TIME_BUDGET = 150

# What the subject-issuing client may get, what the requesting client is registered for, and the
# ceilings of the two rules: deliberately different, so each one decides some of the refusals.
SOURCE_SCOPES = ("crm:contacts.read crm:contacts.write:ids=1,2,3 crm:deals.read:fields=amount,name,stage "
                 "billing:invoices.read:region=eu,us")
REQUESTER_SCOPES = "crm:contacts.read crm:contacts.write crm:deals.read:fields=amount,name billing:invoices.read"
RULE_ACCESS_TOKEN = {
    "id": "random-access-token", "effect": "allow", "clients": ["@REQUESTER@"], "subject_token_types": ["access_token"],
    "audiences": ["crm", "billing"], "resources": [CRM_API],
    "scopes": "crm:contacts.read crm:contacts.write:ids=1,2 crm:deals.read billing:invoices.read:region=eu",
    "actor": "optional", "dpop": "optional", "max_lifetime": 120,
}
RULE_JWT = {
    "id": "random-jwt", "effect": "allow", "clients": ["@REQUESTER@"], "subject_token_types": ["jwt"],
    "subject_issuers": [CI_ISSUER], "subjects": ["repo:acme/*"], "audiences": ["crm"], "scopes": READ_WRITE,
    "actor": "optional", "dpop": "optional", "max_lifetime": 200,
}

# Bases a request may name, with the parameter and values it may narrow (or widen) with.
UNIVERSE = {
    "crm:contacts.read": ("ids", ["1", "2", "3", "4"]),
    "crm:contacts.write": ("ids", ["1", "2", "3", "4"]),
    "crm:deals.read": ("fields", ["name", "amount", "stage", "owner"]),
    "billing:invoices.read": ("region", ["eu", "us", "apac"]),
    "crm:contacts.delete": ("ids", ["1", "2"]),
    "erp:orders.read": ("ids", ["1"]),
}
BASE_WEIGHTS = [5, 5, 4, 4, 1, 1]
AUDIENCES = [([], 50), (["crm"], 15), (["billing"], 10), (["crm", "billing"], 10), (["erp"], 8), (["crm", "erp"], 7)]
RESOURCES = [([], 75), ([CRM_API], 12), (["https://other.example/api"], 7), ([CRM_API + "#contacts"], 6)]


def weighted(rng: random.Random, choices):
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def random_scope(rng: random.Random) -> str:
    base = rng.choices(list(UNIVERSE), weights=BASE_WEIGHTS)[0]
    name, values = UNIVERSE[base]
    roll = rng.random()
    if roll < 0.35:
        return base
    if roll < 0.43:
        return f"{base}:{name}=*"
    return f"{base}:{name}=" + ",".join(rng.sample(values, rng.randint(1, len(values))))


def random_request_scope(rng: random.Random, held: str, ceilings: list[str]) -> str | None:
    """No scope (the default), a narrowing of what the subject holds (half of the time keeping only
    what every ceiling covers; now and then with one more random scope), or one to three scopes
    from the whole universe."""
    roll = rng.random()
    if roll < 0.15:
        return None
    scopes: dict[str, str] = {}
    if roll < 0.65:
        narrowed = random_narrowing(rng, held).split()
        if rng.random() < 0.5:
            narrowed = [s for s in narrowed if all(scopes_cover(c, s) for c in ceilings)] or narrowed
        for scope in narrowed:
            scopes.setdefault(canonical_scope(scope), scope)
        if rng.random() < 0.3:
            scope = random_scope(rng)
            scopes.setdefault(canonical_scope(scope), scope)
    else:
        for _ in range(rng.randint(1, 3)):
            scope = random_scope(rng)
            scopes.setdefault(canonical_scope(scope), scope)
    return " ".join(scopes.values())


def random_narrowing(rng: random.Random, registered: str) -> str:
    """A non-empty random subset of `registered`, each parameter narrowed to a random subset."""
    chosen = []
    for scope in registered.split():
        if rng.random() < 0.3:
            continue
        base, parameters = parse_scope(scope)
        text = base
        for name in sorted(parameters):
            values = sorted(parameters[name])
            text += f":{name}=" + ",".join(rng.sample(values, rng.randint(1, len(values))))
        chosen.append(text)
    return " ".join(chosen) or registered.split()[0]


def system_of(scope: str) -> str:
    return scope.split(":", 1)[0]


@pytest.fixture(scope="module")
def world(broker, tmp_path_factory):
    directory = tmp_path_factory.mktemp("exchange-random")
    broker.add_tenant("acme")
    ci = WorkloadIssuerSim(CI_ISSUER, directory, "ci")
    broker.cli("idps", "add-workload", "--tenant", "acme", "--issuer", CI_ISSUER, "--jwks", str(ci.jwks_path),
               "--audience", "tessera", "--subject", "repo:acme/*", "--claim", "ref=refs/heads/main",
               "--scopes", READ_WRITE)
    source = add_client_with_grants(broker, "acme", "source", SOURCE_SCOPES, grants="client_credentials")
    requester = add_client_with_grants(broker, "acme", "requester", REQUESTER_SCOPES)
    rules = [{**rule, "clients": [requester.client_id]} for rule in (RULE_ACCESS_TOKEN, RULE_JWT)]
    put_policy(broker, "acme", {"exchange": rules}, directory / "policy.json")
    return SimpleNamespace(ci=ci, source=source, requester=requester, rules={r["id"]: r for r in rules})


def test_random_exchanges_only_ever_narrow(broker, world):
    rng = random.Random(SEED)
    subjects = []  # (token, held scopes, exp)
    for _ in range(6):
        body = broker.post_token(world.source, random_narrowing(rng, SOURCE_SCOPES))
        assert body.status_code == 200, body.text[:300]
        token = body.json()["access_token"]
        claims = unverified_claims(token)
        subjects.append((token, claims["scope"], claims["exp"]))

    violations: list[str] = []
    outcomes = {"granted": 0, "refused": 0}
    errors: dict[str | None, int] = {}
    must = {"allow": 0, "refuse": 0}
    started = time.monotonic()
    done = 0
    for number in range(REQUESTS):
        if time.monotonic() - started > TIME_BUDGET and done >= 50:
            break
        done += 1
        # The subject: one of the access tokens, or a fresh workload JWT with a random lifetime
        # (now and then with a sub the issuer's --subject globs do not admit).
        if rng.random() < 0.6:
            subject, held, subject_exp = rng.choice(subjects)
            kind, rule, bad_subject = "access_token", world.rules["random-access-token"], False
        else:
            bad_subject = rng.random() < 0.05
            sub = "repo:evil/widgets" if bad_subject else f"repo:acme/svc-{rng.randint(1, 9)}"
            claims = world.ci.claims(sub=sub, lifetime=rng.randint(15, 400))
            subject, held, subject_exp = world.ci.sign(claims), READ_WRITE, claims["exp"]
            kind, rule = "jwt", world.rules["random-jwt"]
        ceilings = {"subject": held, "registration": REQUESTER_SCOPES, "rule": rule["scopes"]}
        scope = random_request_scope(rng, held, [REQUESTER_SCOPES, rule["scopes"]])
        audience = weighted(rng, AUDIENCES)
        resource = weighted(rng, RESOURCES)

        requested = scope.split() if scope else []
        must_refuse = []
        for asked in requested:
            if "*" in asked:
                must_refuse.append(f"wildcard {asked}")
            for name, ceiling in ceilings.items():
                if not scopes_cover(ceiling, asked):
                    must_refuse.append(f"{asked} not covered by the {name}")
        must_refuse += [f"audience {a} not listed" for a in audience if a not in rule.get("audiences", [])]
        must_refuse += [f"resource {r} not listed" for r in resource if r not in rule.get("resources", [])]
        if bad_subject:
            must_refuse.append("subject not admitted by the issuer")
        default_audience = {system_of(s) for s in requested}
        must_allow = (not must_refuse and scope is not None and not audience and not resource
                      and default_audience <= set(rule["audiences"]))

        must["allow"] += must_allow
        must["refuse"] += bool(must_refuse)
        label = (f"#{number} {kind} subject holding {held!r}, scope={scope!r}, audience={audience}, "
                 f"resource={resource}")
        before = time.time()
        response = exchange(broker, world.requester, subject, kind, scope=scope, audience=audience, resource=resource)

        if response.status_code != 200:
            outcomes["refused"] += 1
            error = response.json().get("error") if response.headers.get("Content-Type", "").startswith(
                "application/json") else None
            errors[error] = errors.get(error, 0) + 1
            try:
                assert_oauth_error(response, EXCHANGE_ERRORS, never_echo=[subject])
            except AssertionError as error:
                violations.append(f"{label}: {error}")
            if must_allow:
                violations.append(f"{label}: refused ({response.text[:200]}) although every rule of the contract allows it")
            continue

        outcomes["granted"] += 1
        if must_refuse:
            violations.append(f"{label}: granted although {'; '.join(must_refuse)}")
        body = response.json()
        token = body["access_token"]
        try:
            claims = verify_access_token(broker, token, audience=None)
        except Exception as error:  # noqa: BLE001 - reported with the request that caused it
            violations.append(f"{label}: issued token does not verify: {error!r}")
            continue
        granted = body.get("scope", "").split()
        if claims.get("scope", "").split() != granted:
            violations.append(f"{label}: response scope {body.get('scope')!r} != token scope {claims.get('scope')!r}")
        if not granted:
            violations.append(f"{label}: granted an empty scope")
        for scope_granted in granted:
            if "*" in scope_granted:
                violations.append(f"{label}: granted a wildcard {scope_granted}")
            for name, ceiling in ceilings.items():
                if not scopes_cover(ceiling, scope_granted):
                    violations.append(f"{label}: granted {scope_granted} not covered by the {name} ({ceiling!r})")
        if scope is not None and {canonical_scope(s) for s in granted} != {canonical_scope(s) for s in requested}:
            violations.append(f"{label}: granted {body.get('scope')!r} instead of the requested {scope!r}")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        allowed_targets = set(rule.get("audiences", [])) | set(rule.get("resources", []))
        if not audiences or not set(audiences) <= allowed_targets:
            violations.append(f"{label}: aud {audiences} outside what the rule allows {sorted(allowed_targets)}")
        if body.get("expires_in", 10**9) > rule["max_lifetime"]:
            violations.append(f"{label}: expires_in {body.get('expires_in')} > max_lifetime {rule['max_lifetime']}")
        if body.get("expires_in", 10**9) > subject_exp - int(before) + 1 or claims["exp"] > subject_exp:
            violations.append(f"{label}: lifetime beyond the subject's (expires_in {body.get('expires_in')}, "
                              f"exp {claims['exp']} > subject exp {subject_exp})")
        if claims["exp"] - claims["iat"] > rule["max_lifetime"]:
            violations.append(f"{label}: exp - iat beyond max_lifetime")
        if claims["client_id"] != world.requester.client_id or claims["tid"] != "acme":
            violations.append(f"{label}: client_id/tid {claims['client_id']}/{claims['tid']}")
        if body.get("token_type") != "Bearer" or "cnf" in claims:
            violations.append(f"{label}: unbound request, yet token_type {body.get('token_type')} / cnf")
        if "refresh_token" in body:
            violations.append(f"{label}: a refresh token from a rule without refresh_tokens")

    print(f"seed {SEED}: {done} requests, {outcomes}, errors {errors}, model: {must}")
    assert not violations, f"{len(violations)} violations in {done} requests (seed {SEED}):\n" + "\n".join(violations[:15])
    # The generator must exercise both sides.
    assert outcomes["granted"] >= 20 and outcomes["refused"] >= 20, outcomes
