/**
 * True for a host name or address only this machine can reach: `localhost`, 127.0.0.0/8 and ::1
 * (bracketed or not, and as an IPv4-mapped IPv6 address, as node reports a socket's address).
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/^::ffff:(?=\d)/, '');
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}
