import { createHash } from 'node:crypto';
import { defaults } from '../config/defaults.js';

/**
 * The bucket of a message, as postbox.messages stores it: the first byte of the MD5 of its key
 * (of its id when it has no key), as UTF-8, modulo the number of buckets. Any language can compute it.
 */
export function bucketOf(key: string | null, messageId: string): number {
  return (
    (createHash('md5')
      .update(key ?? messageId.toLowerCase(), 'utf8')
      .digest()[0] as number) % defaults.partitionBuckets
  );
}

/** The partition a bucket falls in, for a group of `partitions` partitions: floor(bucket × partitions / buckets). */
export function partitionOfBucket(bucket: number, partitions: number): number {
  return Math.floor((bucket * partitions) / defaults.partitionBuckets);
}

/** The partition of a message with this key (or, without a key, this id) in a group of `partitions` partitions. */
export function partitionOf(key: string | null, messageId: string, partitions: number): number {
  return partitionOfBucket(bucketOf(key, messageId), partitions);
}
