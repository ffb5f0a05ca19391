// Prometheus text as the processes under test serve it: the one reader tests and benchmarks share.

/**
 * The sum of `name`'s samples in Prometheus text whose labels contain every one of `labels`
 * (e.g. `type="MESSAGE_CREATE"`), over all its series: a pod's cluster processes each have theirs.
 */
export function metricSum(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (!labels.every((label) => rest.includes(label))) continue;
    sum += Number(line.split(' ').pop());
  }
  return sum;
}
