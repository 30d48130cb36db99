"""Getting paid: the provider protocol and its sandbox (``providers``), the queue that
applies every payment event in order (``payment_queue``) and the collector that charges
what is due, with retries (``collection``)."""
