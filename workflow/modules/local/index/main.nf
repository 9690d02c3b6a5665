process CFRNA_INDEX {
    tag "${aligner}"
    label 'process_medium'
    conda "${moduleDir}/environment.yml"

    input:
    path fasta        // file: genome FASTA
    path gtf          // file: GTF
    val aligner       // string: mappy | star
    val cache_dir     // string: absolute folder to keep/reuse indexes in across runs, or '' (task-local)

    output:
    path "${aligner}_index", emit: index     // the index folder (a link into cache_dir when given)
    path "versions.yml"    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // `cfrna index` builds <root>/<aligner>-<content hash>/ (or reuses it) and prints its path
    def root = cache_dir ?: 'cache'
    """
    idx=\$(cfrna-index \\
        --fasta ${fasta} \\
        --gtf ${gtf} \\
        --aligner ${aligner} \\
        --outdir ${root} \\
        --threads ${task.cpus} \\
        ${args} | tail -n 1)
    ln -s "\$(readlink -f "\$idx")" ${aligner}_index

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-index --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${aligner}_index
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
