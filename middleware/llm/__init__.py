"""The LLM gateway core: an OpenAI-compatible chat-completions filter (docs/llm.md).

Up: every string of the request passes the redactor (`plan_request`, `PromptRedactor`),
values become placeholders like `[EMAIL_1]`, numbered per conversation by the
`PlaceholderBook`. Down: `FieldFilter` restores this request's placeholders (and the
tolerated rewrites of them) and redacts values the client never sent, streamed or whole,
holding back only a bounded tail. `ChatCompletions` ties it together over an injected
provider (`Upstream`). Errors, under one root, carry OpenAI's error shape::

    LlmError
    ├── InvalidRequest          400, names the parameter
    ├── RedactionUnavailable    503, nothing went up
    ├── UpstreamError           the provider's status, its names, not its message
    ├── UpstreamUnavailable     502 / 504
    ├── UpstreamProtocolError   502, the answer could not be read
    └── NotConfigured           503, no provider configured
"""

from coatcheck.middleware.llm.book import PlaceholderBook
from coatcheck.middleware.llm.errors import (
    InvalidRequest,
    LlmError,
    NotConfigured,
    RedactionUnavailable,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailable,
    openai_error,
)
from coatcheck.middleware.llm.placeholders import (
    DEFAULT_LABELS,
    MAX_VARIANT_LEN,
    PlaceholderGrammar,
    PlaceholderMatch,
    format_placeholder,
    label_for,
)
from coatcheck.middleware.llm.proxy import (
    CONVERSATION_HEADER,
    ChatCompletions,
    Exchange,
    Prepared,
    conversation_for,
)
from coatcheck.middleware.llm.redact import (
    PromptRedactor,
    Redaction,
    RestoreEntry,
    RestoreMap,
    default_grammar,
)
from coatcheck.middleware.llm.request import PromptPlan, plan_request
from coatcheck.middleware.llm.response import StreamRewriter, rewrite_completion
from coatcheck.middleware.llm.response_detect import (
    CONSERVATIVE,
    DEFAULT_SHAPES,
    WORD_TYPES,
    Found,
    NoResponseDetector,
    ResponseDetector,
    ShapedDetector,
    ValueShape,
)
from coatcheck.middleware.llm.restore import FieldFilter, Released, redaction_marker
from coatcheck.middleware.llm.sse import DONE, SseDecoder, encode_event
from coatcheck.middleware.llm.upstream import Upstream, UpstreamAnswer

__all__ = [
    "CONSERVATIVE",
    "CONVERSATION_HEADER",
    "DEFAULT_LABELS",
    "DEFAULT_SHAPES",
    "DONE",
    "MAX_VARIANT_LEN",
    "WORD_TYPES",
    "ChatCompletions",
    "Exchange",
    "FieldFilter",
    "Found",
    "InvalidRequest",
    "LlmError",
    "NoResponseDetector",
    "NotConfigured",
    "PlaceholderBook",
    "PlaceholderGrammar",
    "PlaceholderMatch",
    "Prepared",
    "PromptPlan",
    "PromptRedactor",
    "Redaction",
    "RedactionUnavailable",
    "Released",
    "ResponseDetector",
    "RestoreEntry",
    "RestoreMap",
    "ShapedDetector",
    "SseDecoder",
    "StreamRewriter",
    "Upstream",
    "UpstreamAnswer",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamUnavailable",
    "ValueShape",
    "conversation_for",
    "default_grammar",
    "encode_event",
    "format_placeholder",
    "label_for",
    "openai_error",
    "plan_request",
    "redaction_marker",
    "rewrite_completion",
]
