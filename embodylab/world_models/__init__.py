"""Object-centric stochastic world models: data (`data`), the model (`object_centric`), baselines
(`baselines`), open-loop evaluation (`evaluation`), training (`training`) and MPPI control (`planning`)."""
