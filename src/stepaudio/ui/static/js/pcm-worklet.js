// The microphone as 16-bit PCM at 24 kHz (the Realtime protocol's audio/pcm), posted to
// the page every 100 ms. Resampled here by linear interpolation, position kept across
// blocks so that no sample is dropped or repeated at a block's edge.

const RATE = 24000;
const BATCH = RATE / 10;

class PcmWorklet extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / RATE; // input samples per output sample
    this.position = 0; // of the next output sample, in input samples from the last one kept
    this.last = 0;
    this.out = new Int16Array(BATCH);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    // Input samples, with the previous block's last in front (index -1 -> 0).
    while (this.position < channel.length) {
      const i = Math.floor(this.position);
      const frac = this.position - i;
      const a = i === 0 ? this.last : channel[i - 1];
      const b = channel[i];
      const value = a + (b - a) * frac;
      this.out[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(value * 32767)));
      if (this.filled === BATCH) {
        this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(BATCH);
        this.filled = 0;
      }
      this.position += this.step;
    }
    this.position -= channel.length;
    this.last = channel[channel.length - 1];
    return true;
  }
}

registerProcessor("pcm-worklet", PcmWorklet);
