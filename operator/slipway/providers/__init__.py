"""How a task is carried out: Jobs, remote CloudEvent tools, the built-in evaluation."""
