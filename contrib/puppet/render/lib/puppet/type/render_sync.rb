# frozen_string_literal: true

require 'fileutils'
require 'json'
require 'tempfile'
require 'timeout'

# Why a type and not an exec: an exec's `unless` check only knows zero and non-zero, so under
# `puppet apply --noop` a failing render (exit 4) would read as a pending change. Here the check
# maps render's exit codes itself: 0 in sync, 2 changes pending (a noop event, with the masked
# diff in the log), anything else fails the resource, in a real run and in --noop alike.
Puppet::Type.newtype(:render_sync) do
  @doc = <<-DOC
    @summary One service's files kept in sync with hieradata by `render` (use render::service).

    The check runs `render --noop --quiet SERVICE` (with --noop: `--noop --diff`, the masked diff
    logged); the sync runs `render --diff SERVICE`. Exit 0 and 2 are success, 4, 6, 64 and 70 fail
    the resource. render restarts what changed itself: this type notifies nothing.
  DOC

  newparam(:name, namevar: true) do
    desc 'The service name (a folder of the template search path).'
  end

  newparam(:command, array_matching: :all) do
    desc 'How to run render: its absolute path, or an interpreter and its arguments.'
    defaultto ['/usr/bin/render']
  end

  newparam(:options, array_matching: :all) do
    desc 'Options for both calls, before the service name.'
    defaultto []
  end

  newparam(:timeout) do
    desc 'Seconds each render call may take before the resource fails.'
    defaultto 300
    munge { |value| Float(value) }
  end

  newparam(:facts) do
    desc 'The facts the catalog was compiled with, written as JSON to facts_file for --facts.'
  end

  newparam(:facts_file) do
    desc 'Where facts are written (mode 0600, directory 0700); rewritten only when they differ.'
  end

  newproperty(:state) do
    desc 'in_sync: render has nothing to write or restart.'
    newvalues(:in_sync)
    defaultto :in_sync

    def retrieve
      noop = resource.noop? # Puppet::Type's: --noop, or the resource's noop
      resource.with_facts(noop) do
        output, status = resource.render_call(noop ? ['--noop', '--diff'] : ['--noop', '--quiet'])
        case status
        when 0 then :in_sync
        when 2
          output.each_line { |line| resource.notice(line.chomp) } if noop
          :changes_pending
        else resource.failed(output, status)
        end
      end
    end

    def sync
      output, status = resource.render_call(['--diff'])
      output.each_line { |line| resource.notice(line.chomp) }
      resource.failed(output, status) unless [0, 2].include?(status)
      :render_changed
    end

    def change_to_s(current, _should)
      current == :changes_pending ? 'render changed files (or owes a restart)' : super
    end
  end

  def render_call(flags)
    argv = [*self[:command], *self[:options]]
    argv += ['--facts', @facts_path] if @facts_path
    argv += [*flags, self[:name]]
    debug("running #{argv.join(' ')} (timeout #{self[:timeout]} s)")
    output = Timeout.timeout(self[:timeout]) do
      Puppet::Util::Execution.execute(argv, failonfail: false, combine: true)
    end
    [output.to_s, output.exitstatus]
  rescue Timeout::Error
    raise Puppet::Error, "render #{self[:name]}: no result after #{self[:timeout]} seconds " \
                         '(the timeout; see render::service for its formula)'
  end

  def failed(output, status)
    lines = output.lines.map(&:chomp).reject(&:empty?)
    raise Puppet::Error, "render #{self[:name]} failed (exit #{status}): " \
                         "#{lines.empty? ? 'no output' : lines.join(' | ')}"
  end

  # Puppet's own facts as render reads them (`--facts`, as `puppet lookup --facts`): plain JSON,
  # Puppet's undef as null, and the four facts Puppet demands together completed with null when
  # Facter gave only some (a host without a domain). A real run (re)writes facts_file when the
  # facts differ; --noop writes nothing that lasts: new facts go to a private temporary file
  # (0600) for the one check and are removed after it.
  def with_facts(noop)
    text = facts_text
    path = self[:facts_file]
    if text.nil? || (File.file?(path) && File.read(path) == text)
      @facts_path = text && path
      return yield
    end
    unless noop
      FileUtils.mkdir_p(File.dirname(path), mode: 0o700)
      Puppet::Util.replace_file(path, 0o600) { |file| file.write(text) }
      debug("wrote #{path}")
      @facts_path = path
      return yield
    end
    Tempfile.create(['render-facts-', '.json']) do |file|
      file.write(text)
      file.flush
      @facts_path = file.path
      yield
    end
  end

  def facts_text
    return nil if self[:facts_file].nil? || self[:facts].nil?

    facts = plain(self[:facts])
    %w[hostname domain fqdn clientcert].each { |key| facts[key] = nil unless facts.key?(key) }
    "#{JSON.pretty_generate(facts)}\n"
  end

  def plain(value)
    case value
    when Hash then value.map { |key, item| [key.to_s, plain(item)] }.sort_by(&:first).to_h
    when Array then value.map { |item| plain(item) }
    when :undef then nil
    when Symbol then value.to_s
    else value
    end
  end
end
