"""The OpenAI Responses API on chat workers: requests translated to chat rounds run by the chat tool loop,
and stored responses (ADR 0013)."""
