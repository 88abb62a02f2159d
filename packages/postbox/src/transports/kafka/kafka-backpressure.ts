export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface PartitionControl {
  pause(partition: TopicPartition): void;
  resume(partition: TopicPartition): void;
}

interface Hold {
  partition: TopicPartition;
  /** Paused because too many messages were in flight. */
  full: boolean;
  /** Paused because its delivery is slow. */
  slow: boolean;
}

/**
 * Counts messages fetched but not yet committed. Above the high-water mark every partition that
 * brings more is paused, so fetches stop asking for it; all of them resume once the count is back
 * to half the mark. A delivery that runs past its threshold pauses its own partition until it ends.
 * A partition paused for both reasons resumes when neither holds.
 */
export class Backpressure {
  private count = 0;
  private readonly holds = new Map<string, Hold>();

  constructor(
    private readonly highWaterMark: number,
    private readonly control: PartitionControl,
  ) {}

  get inFlight(): number {
    return this.count;
  }

  /** The partitions paused now. */
  paused(): TopicPartition[] {
    return [...this.holds.values()].map((hold) => hold.partition);
  }

  admit(partition: TopicPartition, messages: number): void {
    this.count += messages;
    if (this.count > this.highWaterMark) this.hold(partition, 'full');
  }

  release(messages: number): void {
    this.count = Math.max(0, this.count - messages);
    if (this.count > this.highWaterMark / 2) return;
    for (const [key, hold] of this.holds) {
      hold.full = false;
      this.releaseIfFree(key, hold);
    }
  }

  slow(partition: TopicPartition, slow: boolean): void {
    if (slow) {
      this.hold(partition, 'slow');
      return;
    }
    const key = keyOf(partition);
    const hold = this.holds.get(key);
    if (!hold) return;
    hold.slow = false;
    this.releaseIfFree(key, hold);
  }

  private hold(partition: TopicPartition, reason: 'full' | 'slow'): void {
    const key = keyOf(partition);
    let hold = this.holds.get(key);
    if (!hold) {
      hold = { partition, full: false, slow: false };
      this.holds.set(key, hold);
      this.control.pause(partition);
    }
    hold[reason] = true;
  }

  private releaseIfFree(key: string, hold: Hold): void {
    if (hold.full || hold.slow) return;
    this.holds.delete(key);
    this.control.resume(hold.partition);
  }
}

function keyOf(partition: TopicPartition): string {
  return `${partition.topic}\u0000${partition.partition}`;
}
