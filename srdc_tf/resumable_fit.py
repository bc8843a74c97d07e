"""`model.fit` that starts where a restored backup stopped, mid-epoch too."""


def fit(model, train, validation, steps, epochs, resume, epoch_state,
        callbacks, verbose):
  """`model.fit` from where `resume` stands; returns the merged history.

  `train(s)` is the training stream from step s; the stream is a pure
  function of the seed, so it starts where the interrupted run was. An
  epoch interrupted in its middle is finished by a `fit` of its remaining
  steps that keeps the restored per-epoch state; then the other epochs.

  Args:
    model: the compiled model, its weights restored.
    train: `step -> tf.data.Dataset`, the training stream from that step.
    validation: the validation dataset.
    steps: training steps per epoch.
    epochs: the run's number of epochs.
    resume: the `callbacks.backup.ResumePoint` restored, or None for a
      fresh run.
    epoch_state: the `EpochStateCallback`, or None (source-only).
    callbacks: the callbacks of every `fit`.
    verbose: Keras' `fit` verbosity.

  Returns:
    `{log name: [value per epoch trained]}` over every `fit` made.
  """
  history = {}

  def fit_epochs(first_epoch, last_epoch, epoch_steps, done):
    result = model.fit(train(done), initial_epoch=first_epoch,
                       epochs=last_epoch, steps_per_epoch=epoch_steps,
                       validation_data=validation, callbacks=callbacks,
                       verbose=verbose,
                       # The datasets shuffle; Keras' default warns.
                       shuffle=False)
    for key, values in result.history.items():
      history.setdefault(key, []).extend(values)

  epoch = resume.epoch if resume else 0
  if resume and resume.step_in_epoch:
    if epoch_state is not None:
      epoch_state.keep_restored_state(epoch, resume.epoch_logs)
    fit_epochs(epoch, epoch + 1, steps - resume.step_in_epoch,
               resume.global_step)
    epoch += 1
  if epoch < epochs:
    fit_epochs(epoch, epochs, steps, epoch * steps)
  return history
