"""The SECRET_* family: credentials pasted into chat (cloud keys, tokens, private keys,
`password=` / `api_key=` assignments).

Each format is the issuer's documented shape (a fixed prefix and a length or alphabet), so a
hit is as good as a checksum: these rank as validated. Every recognizer is gated on its
prefix substring, so a message that carries none pays one `in` test per prefix. A
private-key block is taken from its BEGIN line through its END line, or to the end of the
message when the END line is missing (a truncated paste is still a key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from coatcheck.middleware.detect.recognizers import Recognizer
from coatcheck.middleware.detect.scan import Scan

__all__ = ["ASSIGNMENT_WORDS", "SECRET_RECOGNIZERS", "SECRET_TYPES", "SECRET_WORDS_KEY"]

_TAIL: Final = r"(?![\w-])"


def _secret(
    name: str,
    pattern: str,
    requires: tuple[str, ...],
    token: int = 0,
    casefold: bool = False,
    gate: Callable[[Scan], bool] | None = None,
) -> Recognizer:
    """A secret's recognizer; `token`: the fewest characters of the run without white
    space that holds the value (its prefix and shortest body)."""
    return Recognizer(
        name,
        (pattern,),
        validator=None,
        score=0.95,
        prune=False,
        needs_digit=False,
        requires=requires,
        requires_casefold=casefold,
        min_token=token,
        gate=gate,
    )


# Words that name a secret in an assignment or a sentence ("api_key=...", "my password is
# ..."), in the shipped languages; the value is the next token.
_SECRET_WORDS: Final = (
    r"pass(?:word|wd|wort|phrase)?|pwd|kennwort|mot de passe|mdp|contrase[ñn]a|senha"  # noqa: S105
    r"|wachtwoord|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key|secret[_-]?key"
    r"|auth[_-]?token|access[_-]?token|token|private[_-]?key|accountkey|sharedaccesskey"
)
_IS: Final = r"\s*(?:[:=]>?|\bis\b|\bist\b|\best\b|\bes\b|\bè\b|\bé\b)\s*"
# What each of those words starts with: an assignment needs one at a word start. The
# detector's word index looks for them (its list `SECRET_WORDS_KEY`) with the other finders'
# words, in the same scan.
ASSIGNMENT_WORDS: Final = (
    "pass",
    "pwd",
    "kennwort",
    "mot de passe",
    "mdp",
    "contrase",
    "senha",
    "wachtwoord",
    "secret",
    "client",
    "api",
    "access",
    "auth",
    "token",
    "private",
    "accountkey",
    "sharedaccesskey",
)
SECRET_WORDS_KEY: Final = "secret words"  # noqa: S105 (a list name)

SECRET_RECOGNIZERS: Final[tuple[Recognizer, ...]] = (
    # AWS access key id (long-term AKIA, temporary ASIA, and the other documented prefixes).
    _secret(
        "SECRET_AWS_ACCESS_KEY",
        rf"(?<![\w-])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{{16}}{_TAIL}",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        token=20,
    ),
    # AWS secret access key: 40 base64 characters, only after its name.
    _secret(
        "SECRET_AWS_SECRET_KEY",
        r"(?i:aws_?secret_?(?:access_?)?key|secret access key)[\"']?\s*[:=]?\s*[\"']?"
        r"(?P<value>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        ("secret",),
        token=40,
        casefold=True,
    ),
    _secret("SECRET_GOOGLE_API_KEY", rf"(?<![\w-])AIza[0-9A-Za-z_-]{{35}}{_TAIL}", ("AIza",), 39),
    _secret(
        "SECRET_GITHUB_TOKEN",
        rf"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9_]{{36,251}}|github_pat_[A-Za-z0-9_]{{22,251}}){_TAIL}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        token=33,
    ),
    _secret(
        "SECRET_GITLAB_TOKEN",
        rf"(?<![\w-])gl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|soat)-[A-Za-z0-9_-]{{20,64}}{_TAIL}",
        ("glpat-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-", "glsoat-"),
        token=25,
    ),
    # Slack tokens: xoxb (bot), xoxp (user), xoxa/xoxr (app/refresh), xoxs, xoxo, xoxe.
    _secret(
        "SECRET_SLACK_TOKEN",
        rf"(?<![\w-])xox[abeoprs]-(?:[0-9]{{1,20}}-){{1,4}}[A-Za-z0-9]{{6,64}}{_TAIL}"
        rf"|(?<![\w-])xapp-\d-[A-Z0-9]{{6,16}}-\d{{6,16}}-[a-f0-9]{{32,80}}{_TAIL}",
        ("xox", "xapp-"),
        token=13,
    ),
    _secret(
        "SECRET_SLACK_WEBHOOK",
        r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,120}",
        ("hooks.slack.com",),
        token=51,
    ),
    _secret(
        "SECRET_STRIPE_KEY",
        rf"(?<![\w-])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{{16,99}}{_TAIL}",
        ("_live_", "_test_"),
        token=24,
    ),
    # OpenAI (sk-..., sk-proj-...) and Anthropic (sk-ant-...) API keys.
    _secret(
        "SECRET_AI_API_KEY",
        rf"(?<![\w-])sk-(?:proj-|ant-(?:api|admin)\d\d-|svcacct-)?[A-Za-z0-9_-]{{32,200}}{_TAIL}",
        ("sk-",),
        token=35,
    ),
    _secret(
        "SECRET_TELEGRAM_BOT_TOKEN",
        rf"(?<![\w:-])\d{{8,10}}:AA[A-Za-z0-9_-]{{33}}{_TAIL}",
        (":AA",),
        token=44,
    ),
    _secret(
        "SECRET_SENDGRID_KEY",
        rf"(?<![\w-])SG\.[A-Za-z0-9_-]{{22}}\.[A-Za-z0-9_-]{{43}}{_TAIL}",
        ("SG.",),
        token=69,
    ),
    _secret("SECRET_NPM_TOKEN", rf"(?<![\w-])npm_[A-Za-z0-9]{{36}}{_TAIL}", ("npm_",), 40),
    _secret(
        "SECRET_PYPI_TOKEN",
        r"(?<![\w-])pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,300}",
        ("pypi-",),
        66,
    ),
    # JSON Web Token: base64url header (always starts eyJ, '{"'), payload, signature.
    _secret(
        "SECRET_JWT",
        r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,2000}\.eyJ[A-Za-z0-9_-]{5,8000}\.[A-Za-z0-9_-]{0,2000}"
        r"(?![\w-])",
        ("eyJ",),
        token=16,
    ),
    # PEM private key: BEGIN line through the matching END line, else to the end.
    _secret(
        "SECRET_PRIVATE_KEY",
        r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[A-Za-z0-9+/=:,\s-]{0,16000}?-----END [A-Z0-9 ]{0,80}PRIVATE KEY(?: BLOCK)?-----"
        r"|[A-Za-z0-9+/=:,\s-]{0,16000})",
        ("-----BEGIN",),
    ),
    # "password=hunter2", "api_key: abc123...", "my password is Tr0ub4dor&3" (any language).
    _secret(
        "SECRET_ASSIGNMENT",
        rf"(?i:(?<![\w-])(?:{_SECRET_WORDS})[\"']?{_IS}[\"']?)"
        r"(?P<value>(?=[^\s\"']*[\d\W_])[^\s\"',;]{4,200})",
        (),
        gate=lambda scan: scan.has_context(SECRET_WORDS_KEY),
    ),
)

SECRET_TYPES: Final = frozenset(r.entity_type for r in SECRET_RECOGNIZERS)
