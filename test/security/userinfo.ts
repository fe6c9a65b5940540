/** `url` with the user name and password written into it, percent-encoded as a URL must carry them. */
export function withUserinfo(url: string, username: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(username);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}
