process CFRNA_INDEX {
    tag "${aligner}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(fasta)   // reference genome FASTA
    tuple val(meta2), path(gtf)    // reference annotation (splice sites for STAR)
    val aligner                    // string: mappy | star
    val cache_dir                  // string: absolute folder to keep/reuse indexes in across runs, or '' (task-local)

    output:
    tuple val(meta), path("${aligner}_index"), emit: index   // the index folder (a link into cache_dir when given)
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // `cfrna index` builds <root>/<aligner>-<content hash>/ (or reuses it) and prints its path
    def root = cache_dir ?: 'cache'
    """
    idx=\$(cfrna index \\
        --fasta ${fasta} \\
        --gtf ${gtf} \\
        --aligner ${aligner} \\
        --outdir ${root} \\
        --threads ${task.cpus} \\
        ${args} | tail -n 1)
    ln -s "\$(readlink -f "\$idx")" ${aligner}_index
    """

    stub:
    """
    mkdir -p ${aligner}_index
    """
}
