# frozen_string_literal: true

require 'json'
require 'open3'
require 'tempfile'

# render::bundle runs `render bundle` where the catalog is compiled (the Puppet server), with the
# node's $facts, $trusted and environment, and returns the bundle as Sensitive: every lookup the
# services make, answered from the server's hieradata, for `render --bundle FILE` on an agent that
# has no hieradata and no eyaml key. With encryption (the default) the bundle is a CMS envelope
# to the agent's certificate, so the catalog (and PuppetDB, and the agent's cached catalog) holds
# ciphertext only. A failing service does not fail the catalog: render on the node fails it with
# the same line; each such line is a warning here. A bundle that cannot be made fails the catalog
# with render's one line (never a secret: render masks it).
Puppet::Functions.create_function(:'render::bundle') do
  # @param services the services the node renders
  # @param options  command (render on the compiling side: a path or an argv), hieradata (default:
  #                 this environment's directory), templates (search path), encrypt (true),
  #                 encrypt_to (a PEM certificate; default: the node's signed certificate in the
  #                 CA dir, or the node's own when it compiles itself), cache (where the
  #                 envelopes are kept, so an unchanged bundle is the same file: default
  #                 <vardir>/render-bundles), extra (more arguments)
  # @return the bundle, Sensitive
  dispatch :bundle do
    param 'Array[String[1]]', :services
    optional_param 'Hash[String[1], Any]', :options
    return_type 'Sensitive[String]'
  end

  def bundle(services, options = {})
    scope = closure_scope
    certname = scope['trusted']['certname']
    environment = scope.environment
    args = [options.fetch('command', '/usr/bin/render')].flatten.map(&:to_s)
    args += ['bundle', '--node', certname, '--environment', environment.name.to_s,
             '--hieradata', (options['hieradata'] || environment.configuration.path_to_env).to_s]
    [options['templates']].flatten.compact.each { |dir| args += ['--templates', dir.to_s] }
    if options.fetch('encrypt', true)
      args += ['--encrypt-to', options['encrypt_to'] || agent_certificate(certname),
               '--envelope-cache', options['cache'] || File.join(Puppet[:vardir], 'render-bundles')]
    end
    args += [options['extra']].flatten.compact.map(&:to_s)
    with_json(facts_of(scope)) do |facts|
      with_json(plain(scope['trusted'])) do |trusted|
        run(args + ['--facts', facts, '--trusted', trusted, '--', *services])
      end
    end
  end

  def run(args)
    out, err, status = Open3.capture3(*args)
    lines = err.each_line.map(&:chomp).reject(&:empty?)
    unless status.success?
      raise Puppet::Error, "render::bundle: #{lines.first || 'no output'} (exit #{status.exitstatus})"
    end
    lines.each { |line| Puppet.warning("render::bundle: #{line}") }
    Puppet::Pops::Types::PSensitiveType::Sensitive.new(out)
  end

  # $facts as render_sync writes them for --facts: the four facts `puppet lookup --facts` wants
  # together completed with null when Facter gave only some (a host without a domain).
  def facts_of(scope)
    facts = plain(scope['facts'])
    %w[hostname domain fqdn clientcert].each { |key| facts[key] = nil unless facts.key?(key) }
    facts
  end

  def plain(value)
    case value
    when Hash then value.map { |key, item| [key.to_s, plain(item)] }.to_h
    when Array then value.map { |item| plain(item) }
    when :undef then nil
    when Symbol then value.to_s
    else value
    end
  end

  # A 0600 temporary JSON file holding value, removed afterwards.
  def with_json(value)
    file = Tempfile.new(['render-bundle-', '.json'])
    file.chmod(0o600)
    file.write(JSON.generate(value))
    file.close
    yield file.path
  ensure
    file&.close!
  end

  # The node's certificate: signed by this server's CA, or the node's own (puppet apply).
  def agent_certificate(certname)
    candidates = [File.join(Puppet[:cadir], 'signed', "#{certname}.pem"),
                  File.join(Puppet[:ssldir], 'ca', 'signed', "#{certname}.pem")]
    candidates << Puppet[:hostcert] if Puppet[:certname] == certname
    found = candidates.find { |path| File.file?(path) }
    return found if found
    raise Puppet::Error, "render::bundle: no certificate of #{certname} to encrypt the bundle " \
                         "to (looked for #{candidates.join(', ')}); set encrypt_to, or encrypt => false"
  end
end
