// AudioWorklet processors of the voicecore page: microphone capture and agent playback.
//
// "capture" turns the microphone into PCM16 frames of 20 ms and posts them to the page.
// "playback" plays the agent's PCM16 audio from a queue in which marks sit between the chunks;
// a mark is reported ({type: "played"}) when every sample queued before it has been rendered,
// which is what the server calls "heard". "clear" drops the queue and its marks unreported.

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 50);
    this.frame = new Int16Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const samples = inputs[0] && inputs[0][0];
    if (samples) {
      for (let i = 0; i < samples.length; i++) {
        const s = Math.max(-1, Math.min(1, samples[i]));
        this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        if (this.filled === this.size) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // Int16Array chunks and mark names, in arrival order
    this.head = null;
    this.offset = 0;
    this.played = 0; // samples rendered since the start
    this.port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "audio") this.queue.push(new Int16Array(message.data));
      else if (message.type === "mark") this.queue.push(message.name);
      else if (message.type === "clear") {
        this.queue = [];
        this.head = null;
        this.offset = 0;
      }
    };
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    for (;;) {
      while (this.head === null && this.queue.length && typeof this.queue[0] === "string") {
        this.port.postMessage({ type: "played", mark: this.queue.shift(), samples: this.played + i });
      }
      if (i >= out.length) break;
      if (this.head === null) {
        if (!this.queue.length) break;
        this.head = this.queue.shift();
        this.offset = 0;
      }
      const n = Math.min(out.length - i, this.head.length - this.offset);
      for (let k = 0; k < n; k++) out[i + k] = this.head[this.offset + k] / 32768;
      i += n;
      this.offset += n;
      if (this.offset >= this.head.length) this.head = null;
    }
    this.played += i;
    out.fill(0, i);
    return true;
  }
}

registerProcessor("capture", Capture);
registerProcessor("playback", Playback);
