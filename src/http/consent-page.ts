import type { FastifyRequest } from 'fastify';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

/**
 * Whether the caller is a person's browser (it asks for HTML before JSON), as after an OAuth consent;
 * API clients and scripts keep the JSON answer.
 */
export function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  const html = accept.indexOf('text/html');
  const json = accept.indexOf('application/json');
  return html !== -1 && (json === -1 || html < json);
}

/**
 * The small page the person who consented sees after the provider sends them back: what happened, in
 * plain words, and that the tab can be closed. No script, no external resources; the same page for
 * success and failure, told apart by its heading and role.
 */
export function consentPage(outcome: { ok: boolean; title: string; detail: string }): string {
  const role = outcome.ok ? 'status' : 'alert';
  const accent = outcome.ok ? '#116329' : '#a40e26';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(outcome.title)} · Sched</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; padding: 2rem 1rem; color: #1f2328; background: #f6f8fa; }
  main { max-width: 32rem; margin: 0 auto; background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 1.5rem; }
  h1 { font-size: 1.25rem; margin: 0 0 0.5rem; color: ${accent}; }
  p { margin: 0.5rem 0 0; }
</style>
</head>
<body>
<main>
<h1 role="${role}">${escapeHtml(outcome.title)}</h1>
<p>${escapeHtml(outcome.detail)}</p>
<p>You can close this tab now.</p>
</main>
</body>
</html>
`;
}
